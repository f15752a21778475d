//! The U-shaped network both [`crate::nn::UNetConfig`] and [`crate::nn::UViTConfig`] build
//! ([`UNet`]) and its builder.
//!
//! Layout (level `i` works at resolution `size / 2^i` with `base_channels · channel_mults[i]`):
//! `conv_in` → per level: `res_blocks` × (ResBlock [+ Attention]) then Downsample (not at the last
//! level) → middle: ResBlock, Attention, ResBlock (a U-ViT: a transformer stack instead) → per
//! level, reversed: `res_blocks + 1` × (concat skip, ResBlock [+ Attention]) then Upsample (not at
//! level 0) → GN, SiLU, `conv_out`.
//!
//! With `cross_attention` ([`super::CrossAttentionConfig`]), every block of its levels ends with a
//! SpatialTransformer reading the context, and so does the middle (U-Net) or the transformer stack
//! (U-ViT) when the deepest level is one of them.

use crate::kernel::{conv2d, group_norm, silu};
use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::{Embedding, EmbeddingConfig, GroupNorm};
use burn::tensor::{Device, Int, Tensor};

use super::Condition;
use super::NetCore;
use super::layers::{
    AttentionBlock, Downsample, NoiseEmbedding, ResBlock, SpatialTransformer,
    SpatialTransformerSpec, TransformerSpec, TransformerStack, Upsample, init_group_norm,
};

/// The logSNR a network with `cond_noise_level` is told for a spatial condition that comes
/// without a level: a clean one. Super-resolution stages clip their augmentation's logSNR to
/// `±` this value, so it is also the level of an un-augmented condition.
pub const CLEAN_CONDITION_LOG_SNR: f32 = 20.0;

/// What works at the lowest resolution.
pub(super) enum Bottom {
    /// ResBlock, attention, ResBlock (the U-Net's middle).
    Middle,
    /// A transformer stack (U-ViT).
    Transformer {
        width: usize,
        blocks: usize,
        mlp_ratio: usize,
    },
}

/// Everything the shared U-shaped builder needs (U-Net and U-ViT).
pub(super) struct Spec<'a> {
    /// Channels in and out, the condition's channels, widths, groups, classes.
    pub core: &'a NetCore,
    /// Width per level.
    pub widths: Vec<usize>,
    /// Residual blocks per level on the way down (`+1` on the way up).
    pub res_blocks: Vec<usize>,
    pub attention_levels: &'a [usize],
    pub head_channels: usize,
    /// Dropout per level.
    pub dropout: Vec<f64>,
    pub bottom: Bottom,
}

/// Builds the U-shaped network of the module docs; with [`Bottom::Transformer`] the middle is a
/// transformer stack instead.
pub(super) fn build(s: &Spec<'_>, device: &Device) -> UNet {
    let core = s.core;
    let c = core.base_channels;
    let emb_dim = 4 * c;
    let g = core.norm_groups;
    let levels = s.widths.len();
    let attn = |level: usize, ch: usize| {
        s.attention_levels
            .contains(&level)
            .then(|| AttentionBlock::new(ch, s.head_channels, g, device))
    };
    let cross = core.cross_attention.as_ref();
    let xattn = |level: usize, ch: usize| {
        cross.filter(|x| x.levels.contains(&level)).map(|x| {
            SpatialTransformer::new(
                &SpatialTransformerSpec {
                    channels: ch,
                    heads: x.heads,
                    head_dim: ch / x.heads,
                    context_dim: x.context_dim,
                    depth: x.depth,
                    groups: g,
                },
                device,
            )
        })
    };
    let res = |c_in: usize, c_out: usize, level: usize| {
        ResBlock::new(c_in, c_out, emb_dim, g, s.dropout[level], device)
            .with_dropout_max_resolution(core.dropout_max_resolution)
    };

    let mut skips = vec![c];
    let mut ch = c;
    let mut down = Vec::new();
    for (level, &out) in s.widths.iter().enumerate() {
        let mut blocks = Vec::new();
        for _ in 0..s.res_blocks[level] {
            blocks.push(Block {
                res: res(ch, out, level),
                attn: attn(level, out),
                xattn: xattn(level, out),
            });
            ch = out;
            skips.push(ch);
        }
        let downsample = (level + 1 < levels).then(|| Downsample::new(ch, device));
        if downsample.is_some() {
            skips.push(ch);
        }
        down.push(DownLevel { blocks, downsample });
    }

    let deepest = levels - 1;
    let (middle, transformer, transformer_xattn) = match s.bottom {
        Bottom::Middle => (
            Some(Middle {
                res1: res(ch, ch, deepest),
                attn: AttentionBlock::new(ch, s.head_channels, g, device),
                xattn: xattn(deepest, ch),
                res2: res(ch, ch, deepest),
            }),
            None,
            None,
        ),
        Bottom::Transformer {
            width,
            blocks,
            mlp_ratio,
        } => {
            let stack = TransformerStack::new(
                &TransformerSpec {
                    c_in: ch,
                    width,
                    blocks,
                    head_channels: s.head_channels,
                    mlp_ratio,
                    emb_dim,
                    dropout: s.dropout[deepest],
                    dropout_max_resolution: core.dropout_max_resolution,
                },
                device,
            );
            ch = width;
            (None, Some(stack), xattn(deepest, width))
        }
    };

    let class_tokens = cross.and_then(|x| x.class_tokens());
    let mut up = Vec::new();
    for (level, &out) in s.widths.iter().enumerate().rev() {
        let mut blocks = Vec::new();
        for _ in 0..=s.res_blocks[level] {
            let skip = skips.pop().expect("one skip per block");
            blocks.push(Block {
                res: res(ch + skip, out, level),
                attn: attn(level, out),
                xattn: xattn(level, out),
            });
            ch = out;
        }
        let upsample = (level > 0).then(|| Upsample::new(ch, device));
        up.push(UpLevel { blocks, upsample });
    }

    UNet {
        noise_embedding: NoiseEmbedding::new(c, emb_dim, device),
        cond_noise_embedding: core
            .cond_noise_level
            .then(|| NoiseEmbedding::new(c, emb_dim, device)),
        class_embedding: (core.num_classes > 0 && class_tokens.is_none())
            .then(|| EmbeddingConfig::new(core.num_classes + 1, emb_dim).init(device)),
        context_embedding: class_tokens.map(|tokens| {
            let dim = cross.map_or(0, |x| x.context_dim);
            EmbeddingConfig::new(core.num_classes + 1, tokens * dim).init(device)
        }),
        conv_in: super::layers::conv3x3(core.channels + core.cond_channels, c, device),
        down,
        middle,
        transformer,
        transformer_xattn,
        up,
        norm_out: init_group_norm(g, ch, device),
        conv_out: super::layers::conv3x3(ch, core.channels, device),
        num_classes: core.num_classes,
        cond_channels: core.cond_channels,
        class_tokens: class_tokens.unwrap_or(0),
        context_dim: cross.map(|x| x.context_dim),
    }
}

#[derive(Module, Debug)]
struct Block {
    res: ResBlock,
    attn: Option<AttentionBlock>,
    xattn: Option<SpatialTransformer>,
}

/// `x` through the cross-attention `xattn` if there is one (the network checked that a context
/// exists when it has cross-attention).
fn cross(
    xattn: &Option<SpatialTransformer>,
    x: Tensor<4>,
    context: Option<&Tensor<3>>,
) -> Tensor<4> {
    match (xattn, context) {
        (Some(t), Some(c)) => t.forward(x, c.clone()),
        _ => x,
    }
}

impl Block {
    fn forward(&self, x: Tensor<4>, emb: Tensor<2>, context: Option<&Tensor<3>>) -> Tensor<4> {
        let h = self.res.forward(x, emb);
        let h = match &self.attn {
            Some(a) => a.forward(h),
            None => h,
        };
        cross(&self.xattn, h, context)
    }
}

#[derive(Module, Debug)]
struct DownLevel {
    blocks: Vec<Block>,
    downsample: Option<Downsample>,
}

#[derive(Module, Debug)]
struct UpLevel {
    blocks: Vec<Block>,
    upsample: Option<Upsample>,
}

#[derive(Module, Debug)]
struct Middle {
    res1: ResBlock,
    attn: AttentionBlock,
    xattn: Option<SpatialTransformer>,
    res2: ResBlock,
}

/// The U-shaped network; build it with [`crate::nn::UNetConfig::init`] (a U-Net) or
/// [`crate::nn::UViTConfig::init`] (a U-ViT: a transformer stack in place of the middle).
#[derive(Module, Debug)]
pub struct UNet {
    noise_embedding: NoiseEmbedding,
    cond_noise_embedding: Option<NoiseEmbedding>,
    class_embedding: Option<Embedding>,
    conv_in: Conv2d,
    down: Vec<DownLevel>,
    middle: Option<Middle>,
    transformer: Option<TransformerStack>,
    transformer_xattn: Option<SpatialTransformer>,
    /// Learned context tokens per class (cross-attention with `context = { kind = "class" }`).
    context_embedding: Option<Embedding>,
    up: Vec<UpLevel>,
    norm_out: GroupNorm,
    conv_out: Conv2d,
    num_classes: usize,
    cond_channels: usize,
    /// Context tokens per class (0: the context is not made from labels).
    class_tokens: usize,
    /// Width of the context tokens its cross-attention reads (`None`: no cross-attention).
    #[module(skip)]
    context_dim: Option<usize>,
}

impl UNet {
    /// `x`: `[B, C + C_c, H, W]`, the state with any spatial condition already concatenated on
    /// the channel axis (H, W divisible by `2^depth`); `log_snr`: `[B]`; `cond.label`: `[B]`
    /// class indices (`num_classes` = null label; absent: the null label), ignored by an
    /// unconditional network; `cond.context`: `[B, L, context_dim]` for a network whose
    /// cross-attention reads a supplied context (checked by the caller,
    /// [`crate::denoiser::DiffusionModel::raw`]; a network with class-token context makes its own
    /// from the labels); `cond.image_noise`: `[B]`, the spatial condition's noise level,
    /// embedded by a network with `cond_noise_level` (absent: [`CLEAN_CONDITION_LOG_SNR`]).
    pub fn forward(&self, x: Tensor<4>, log_snr: Tensor<1>, cond: &Condition) -> Tensor<4> {
        let mut emb = self.noise_embedding.forward(log_snr);
        let [b, d] = emb.dims();
        let device = emb.device();
        if let Some(embedding) = &self.cond_noise_embedding {
            let level = cond
                .image_noise
                .clone()
                .unwrap_or_else(|| Tensor::<1>::full([b], CLEAN_CONDITION_LOG_SNR, &device));
            emb = emb + embedding.forward(level);
        }
        let labels = || {
            cond.label
                .clone()
                .unwrap_or_else(|| Tensor::<1, Int>::full([b], self.num_classes as i64, &device))
        };
        let class_context = self.context_embedding.as_ref().map(|table| {
            let dim = self.context_dim.unwrap_or(0);
            table
                .forward(labels().reshape([b, 1]))
                .reshape([b, self.class_tokens, dim])
        });
        if let Some(table) = &self.class_embedding {
            emb = emb + table.forward(labels().reshape([b, 1])).reshape([b, d]);
        }
        let context = class_context.as_ref().or(cond.context.as_ref());

        let mut h = conv2d(&self.conv_in, x);
        let mut skips = vec![h.clone()];
        for level in &self.down {
            for block in &level.blocks {
                h = block.forward(h, emb.clone(), context);
                skips.push(h.clone());
            }
            if let Some(ds) = &level.downsample {
                h = ds.forward(h);
                skips.push(h.clone());
            }
        }
        if let Some(middle) = &self.middle {
            h = middle.res1.forward(h, emb.clone());
            h = middle.attn.forward(h);
            h = cross(&middle.xattn, h, context);
            h = middle.res2.forward(h, emb.clone());
        }
        if let Some(transformer) = &self.transformer {
            h = transformer.forward(h, emb.clone());
            h = cross(&self.transformer_xattn, h, context);
        }
        for level in &self.up {
            for block in &level.blocks {
                let skip = skips.pop().expect("one skip per block");
                h = block.forward(Tensor::cat(vec![h, skip], 1), emb.clone(), context);
            }
            if let Some(us) = &level.upsample {
                h = us.forward(h);
            }
        }
        conv2d(&self.conv_out, silu(group_norm(&self.norm_out, h)))
    }

    /// Number of classes (0: unconditional).
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// Width of the context tokens its cross-attention reads (`None`: no cross-attention).
    pub fn context_dim(&self) -> Option<usize> {
        self.context_dim
    }

    /// Whether its cross-attention reads a context the caller supplies (rather than tokens it
    /// makes from the class labels).
    pub fn reads_context(&self) -> bool {
        self.context_dim.is_some() && self.class_tokens == 0
    }

    /// Channels of the spatial condition the network expects beside the state.
    pub fn cond_channels(&self) -> usize {
        self.cond_channels
    }

    /// Whether the network embeds the spatial condition's noise level.
    pub fn takes_cond_noise_level(&self) -> bool {
        self.cond_noise_embedding.is_some()
    }
}
