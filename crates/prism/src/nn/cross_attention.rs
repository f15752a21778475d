//! Cross-attention conditioning of the U-shaped networks (latent diffusion §3.3, formula sheet §5):
//! where [`crate::nn::layers::SpatialTransformer`]s sit, and what context sequence `[B, L, D]`
//! they read.
//!
//! ```toml
//! [model.unet.cross_attention]      # or [model.uvit.cross_attention]
//! levels = [1, 2]                   # a SpatialTransformer after each residual block of these levels
//! heads = 4                         # attention heads (divide each such level's width)
//! depth = 1                         # BasicTransformerBlocks per SpatialTransformer
//! context_dim = 64                  # width D of the context tokens
//! context = { kind = "class", tokens = 4 }   # or { kind = "data" }
//! ```
//!
//! Context sources ([`ContextSource`]):
//! - `class`: the network learns `tokens` context vectors per class (the condition encoder τ of
//!   LDM for class labels). The label then reaches the network only through cross-attention (no
//!   class embedding is added to the noise embedding). The null label `num_classes` has its own
//!   learned tokens: the null context of classifier-free guidance.
//! - `data`: a sequence the user supplies with the images (`data.context`, e.g. precomputed text
//!   embeddings; see [`crate::data::Contexts`]). Its null context is all zeros `[B, L, D]`:
//!   with bias-free K and V projections, zero tokens give zero keys and values, so the
//!   cross-attention adds only its output bias — the same "no context" for every sample, and
//!   stackable with real contexts in one guided batch.
//!
//! Levels count as in the network's other level keys (0 = full resolution). A U-Net's deepest
//! level also puts one in its middle block (ResBlock, attention, SpatialTransformer, ResBlock, as
//! LDM); a U-ViT's level `channel_mults.len()` is its transformer level (one SpatialTransformer
//! after the transformer stack, and after the residual block that leaves that level).

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// See the module docs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrossAttentionConfig {
    /// Levels with a SpatialTransformer after each residual block.
    pub levels: Vec<usize>,
    /// Attention heads; the head width is the level's width divided by `heads`.
    #[serde(default = "default_heads")]
    pub heads: usize,
    /// Transformer blocks per SpatialTransformer.
    #[serde(default = "default_depth")]
    pub depth: usize,
    /// Width `D` of the context tokens.
    pub context_dim: usize,
    /// Where the context comes from.
    pub context: ContextSource,
}

fn default_heads() -> usize {
    4
}
fn default_depth() -> usize {
    1
}

/// Where a network's context sequence comes from (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ContextSource {
    /// Learned tokens per class label (and for the null label).
    Class {
        /// Tokens per class.
        #[serde(default = "default_tokens")]
        tokens: usize,
    },
    /// A `[B, L, context_dim]` sequence supplied with the data; the null context is zeros.
    Data,
}

fn default_tokens() -> usize {
    1
}

impl CrossAttentionConfig {
    /// Checks against the widths of the network's levels (`widths[i]` at level `i`) and its
    /// classes; errors start with `key`.
    pub fn validate(
        &self,
        key: &str,
        widths: &[usize],
        groups: usize,
        num_classes: usize,
    ) -> Result<()> {
        let err = |m: String| Err(Error::config(format!("{key}.cross_attention: {m}")));
        if self.levels.is_empty() {
            return err("levels is empty; list the levels that get cross-attention".into());
        }
        if self.heads == 0 || self.depth == 0 || self.context_dim == 0 {
            return err(format!(
                "heads, depth and context_dim must be positive, got {}, {} and {}",
                self.heads, self.depth, self.context_dim
            ));
        }
        for &l in &self.levels {
            let Some(&w) = widths.get(l) else {
                return err(format!(
                    "levels contains {l}, but there are only {} levels",
                    widths.len()
                ));
            };
            if !w.is_multiple_of(self.heads) || !w.is_multiple_of(groups) {
                return err(format!(
                    "heads = {} (and norm_groups = {groups}) must divide the {w} channels of level {l}",
                    self.heads
                ));
            }
        }
        match self.context {
            ContextSource::Class { tokens: 0 } => err("context.tokens must be positive".into()),
            ContextSource::Class { .. } if num_classes == 0 => err(
                "context = { kind = \"class\" } needs num_classes > 0 (the labels it embeds)"
                    .into(),
            ),
            _ => Ok(()),
        }
    }

    /// Context tokens made from class labels (`None`: the data supplies the context).
    pub fn class_tokens(&self) -> Option<usize> {
        match self.context {
            ContextSource::Class { tokens } => Some(tokens),
            ContextSource::Data => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::{Condition, UNetConfig, UViTConfig};
    use crate::tensor::{normal, to_vec};
    use burn::module::Module;
    use burn::tensor::Tensor;

    fn cross(levels: Vec<usize>, context: ContextSource) -> CrossAttentionConfig {
        CrossAttentionConfig {
            levels,
            heads: 2,
            depth: 1,
            context_dim: 12,
            context,
        }
    }

    fn differs(a: Tensor<4>, b: Tensor<4>) -> bool {
        to_vec(a)
            .iter()
            .zip(to_vec(b))
            .any(|(x, y)| (x - y).abs() > 1e-6)
    }

    /// A U-Net whose label reaches it only through class tokens: the output depends on the
    /// label (and the null label is a context of its own); no class embedding is added to the
    /// noise embedding.
    #[test]
    fn class_tokens_condition_a_unet() {
        let (device, mut rng) = crate::golden_data::seeded(5);
        let mut cfg = UNetConfig::tiny(1);
        cfg.core.num_classes = 3;
        let plain = cfg.init(&device).unwrap().num_params();
        cfg.core.cross_attention = Some(cross(vec![0, 1], ContextSource::Class { tokens: 2 }));
        let net = cfg.init(&device).unwrap();
        assert!(net.num_params() > plain);
        assert!(!net.reads_context() && net.context_dim() == Some(12));
        let x = normal([2, 1, 8, 8], &mut rng, &device);
        let l = Tensor::<1>::from_floats([0.0, 1.0], &device);
        let y = |labels: &[i64]| {
            net.forward(
                x.clone(),
                l.clone(),
                &Condition::from_labels(labels, &device),
            )
        };
        assert_eq!(y(&[0, 1]).dims(), [2, 1, 8, 8]);
        assert!(differs(y(&[0, 0]), y(&[2, 2])));
        assert!(differs(y(&[0, 0]), y(&[3, 3])), "the null label's tokens");
    }

    /// A U-ViT reads a supplied context at a convolutional level and at its transformer level;
    /// the zero (null) context differs from a real one.
    #[test]
    fn supplied_context_conditions_a_uvit() {
        let (device, mut rng) = crate::golden_data::seeded(6);
        let mut cfg = UViTConfig::tiny(1);
        cfg.core.cross_attention = Some(cross(vec![0, 1], ContextSource::Data));
        let net = cfg.init(&device).unwrap();
        assert!(net.reads_context());
        let x = normal([2, 1, 8, 8], &mut rng, &device);
        let l = Tensor::<1>::from_floats([0.0, 1.0], &device);
        let ctx: Tensor<3> = normal([2, 1, 5, 12], &mut rng, &device).reshape([2, 5, 12]);
        let with = |c: Tensor<3>| {
            let cond = Condition {
                context: Some(c),
                ..Condition::none()
            };
            net.forward(x.clone(), l.clone(), &cond)
        };
        let a = with(ctx.clone());
        assert_eq!(a.dims(), [2, 1, 8, 8]);
        assert!(differs(a, with(ctx.zeros_like())));
    }

    #[test]
    fn bad_cross_attention_configs_name_the_key() {
        let bad = |x: CrossAttentionConfig, classes: usize| {
            let mut cfg = UNetConfig::tiny(1);
            cfg.core.num_classes = classes;
            cfg.core.cross_attention = Some(x);
            cfg.validate().unwrap_err().to_string()
        };
        let e = bad(cross(vec![2], ContextSource::Data), 0);
        assert!(
            e.contains("model.unet.cross_attention: levels contains 2"),
            "{e}"
        );
        let e = bad(cross(vec![0], ContextSource::Class { tokens: 1 }), 0);
        assert!(e.contains("needs num_classes"), "{e}");
        let mut x = cross(vec![0], ContextSource::Data);
        x.heads = 3;
        let e = bad(x, 0);
        assert!(e.contains("heads = 3"), "{e}");
        let toml = "levels = [0]\ncontext_dim = 8\ncontext = { kind = \"class\", tokens = 1 }\ndepht = 2\n";
        let e = toml::from_str::<CrossAttentionConfig>(toml).unwrap_err();
        assert!(e.to_string().contains("depht"), "{e}");
    }
}
