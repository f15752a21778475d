//! The trainer's named modules: each a burn module of its own type with its own AdamW, learning-rate
//! schedule, optional gradient clip and optional EMA copy, behind a type-erased slot so one
//! trainer holds any set of networks. A [`Handle`] gives typed access back.
//!
//! In a training-state file, module `M` is stored as `M.<path>` (online weights), `ema.M.<path>`
//! (EMA weights, where asked), `adam_m.M.<path>` and `adam_v.M.<path>` (AdamW moments), with the
//! metadata `optimizer_step.M` (updates applied).

use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::marker::PhantomData;
use std::path::Path;

use burn::module::Module;
use burn::tensor::Gradients;

use super::optimizer::NamedGrads;
use super::{AdamW, AdamWConfig, Collective, LrSchedule, ema_decay, ema_update};
use crate::io::{HostTensor, Loaded, grads_free_flat_params, host_params, load_into};
use crate::{Error, Result};

/// How one module is optimised.
#[derive(Debug, Clone, PartialEq)]
pub struct ModuleSpec {
    /// AdamW settings.
    pub adamw: AdamWConfig,
    /// Learning rate by step.
    pub lr: LrSchedule,
    /// Global gradient-norm clip of this module's gradients (none if absent).
    pub grad_clip: Option<f64>,
    /// Keep an EMA of the weights with this decay (warmed up by [`ema_decay`]); none if absent.
    pub ema_decay: Option<f64>,
}

/// Typed access to a module registered with [`super::Trainer::add`].
#[derive(Debug)]
pub struct Handle<M> {
    index: usize,
    _module: PhantomData<fn() -> M>,
}

impl<M> Clone for Handle<M> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<M> Copy for Handle<M> {}

/// What the trainer needs of a slot without knowing the module's type.
trait Slot {
    fn name(&self) -> &str;
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
    /// The learning rate at `step`.
    fn lr(&self, step: u64) -> f64;
    /// Adds this module's tensors and metadata to a training-state file.
    fn save(&self, tensors: &mut BTreeMap<String, HostTensor>, meta: &mut HashMap<String, String>);
    /// Replaces weights, EMA and optimiser state by those of a training-state file.
    fn restore(&mut self, ck: &Loaded, path: &Path) -> Result<()>;
    /// A copy of the slot (weights, EMA, optimiser state; tensors are shared, not copied).
    fn snapshot(&self) -> Box<dyn Slot>;
}

struct Typed<M> {
    name: String,
    spec: ModuleSpec,
    module: Option<M>,
    ema: Option<M>,
    opt: AdamW,
}

impl<M: Module + 'static> Typed<M> {
    fn module(&self) -> &M {
        self.module
            .as_ref()
            .expect("a module is present between updates")
    }
}

impl<M: Module + 'static> Slot for Typed<M> {
    fn name(&self) -> &str {
        &self.name
    }

    fn snapshot(&self) -> Box<dyn Slot> {
        Box::new(Typed {
            name: self.name.clone(),
            spec: self.spec.clone(),
            module: self.module.clone(),
            ema: self.ema.clone(),
            opt: self.opt.clone(),
        })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn lr(&self, step: u64) -> f64 {
        self.spec.lr.at(step)
    }

    fn save(&self, tensors: &mut BTreeMap<String, HostTensor>, meta: &mut HashMap<String, String>) {
        let name = &self.name;
        let prefixed = |prefix: String, m: BTreeMap<String, HostTensor>| {
            m.into_iter()
                .map(move |(k, v)| (format!("{prefix}.{k}"), v))
        };
        tensors.extend(prefixed(name.clone(), host_params(self.module())));
        if let Some(ema) = &self.ema {
            tensors.extend(prefixed(format!("ema.{name}"), host_params(ema)));
        }
        let (steps, moments) = self.opt.state(name);
        tensors.extend(moments);
        meta.insert(format!("optimizer_step.{name}"), steps.to_string());
    }

    fn restore(&mut self, ck: &Loaded, path: &Path) -> Result<()> {
        let name = self.name.clone();
        let module = load_into(self.module().clone(), &ck.with_prefix(&name), path)?;
        if let Some(ema) = &self.ema {
            self.ema = Some(load_into(
                ema.clone(),
                &ck.with_prefix(&format!("ema.{name}")),
                path,
            )?);
        }
        let steps = ck.meta_u64(&format!("optimizer_step.{name}"), path)?;
        // The moments live where the optimiser makes them: on the parameters' plain device.
        let device = grads_free_flat_params(&module)
            .values()
            .next()
            .map(|t| t.device());
        if let Some(device) = device {
            self.opt.restore(&name, steps, &ck.tensors, &device);
        }
        self.module = Some(module);
        Ok(())
    }
}

/// The trainer's modules by name, in the order they were added.
#[derive(Default)]
pub struct Modules {
    slots: Vec<Box<dyn Slot>>,
}

impl std::fmt::Debug for Modules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

/// Names that would collide with the other keys of a training-state file.
const RESERVED: [&str; 3] = ["ema", "adam_m", "adam_v"];

impl Modules {
    /// Registers `module` under `name` (non-empty, no `.`, not `ema`/`adam_m`/`adam_v`, unique).
    /// The EMA copy, where `spec` asks for one, starts as `module.valid()`.
    pub(super) fn add<M: Module + 'static>(
        &mut self,
        name: &str,
        module: M,
        spec: ModuleSpec,
    ) -> Result<Handle<M>> {
        if name.is_empty() || name.contains('.') || RESERVED.contains(&name) {
            return Err(Error::invalid(format!(
                "module name '{name}' must be non-empty, without '.', and none of {RESERVED:?}"
            )));
        }
        if self.names().contains(&name) {
            return Err(Error::invalid(format!("module '{name}' is added twice")));
        }
        let ema = spec.ema_decay.map(|_| module.valid());
        let opt = AdamW::new(spec.adamw.clone());
        self.slots.push(Box::new(Typed {
            name: name.to_string(),
            spec,
            module: Some(module),
            ema,
            opt,
        }));
        Ok(Handle {
            index: self.slots.len() - 1,
            _module: PhantomData,
        })
    }

    fn typed<M: Module + 'static>(&self, h: &Handle<M>) -> &Typed<M> {
        self.slots
            .get(h.index)
            .and_then(|s| s.as_any().downcast_ref())
            .expect("the handle comes from this trainer")
    }

    fn typed_mut<M: Module + 'static>(&mut self, h: &Handle<M>) -> &mut Typed<M> {
        self.slots
            .get_mut(h.index)
            .and_then(|s| s.as_any_mut().downcast_mut())
            .expect("the handle comes from this trainer")
    }

    /// A copy of every module's weights, EMA and optimiser state, to roll a step back (tensors are
    /// shared until the optimiser replaces them). Running statistics kept inside a module (burn's
    /// `RunningState`, e.g. BatchNorm's) are shared with the copy, not rolled back.
    pub(super) fn snapshot(&self) -> Modules {
        Modules {
            slots: self.slots.iter().map(|s| s.snapshot()).collect(),
        }
    }

    /// The number of modules.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether there are no modules.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The module names, in the order they were added.
    pub fn names(&self) -> Vec<&str> {
        self.slots.iter().map(|s| s.name()).collect()
    }

    /// The name of a module.
    pub fn name<M: Module + 'static>(&self, h: &Handle<M>) -> &str {
        &self.typed(h).name
    }

    /// The online (trained) weights of a module.
    pub fn get<M: Module + 'static>(&self, h: &Handle<M>) -> &M {
        self.typed(h).module()
    }

    /// The EMA weights of a module (on the plain device), if its spec asks for them.
    pub fn ema<M: Module + 'static>(&self, h: &Handle<M>) -> Option<&M> {
        self.typed(h).ema.as_ref()
    }

    /// The number of optimiser updates a module has had.
    pub fn updates<M: Module + 'static>(&self, h: &Handle<M>) -> u64 {
        self.typed(h).opt.steps()
    }

    /// A module's learning rate at `step`.
    pub fn lr<M: Module + 'static>(&self, h: &Handle<M>, step: u64) -> f64 {
        self.typed(h).spec.lr.at(step)
    }

    /// Every module's learning rate at `step`, as `lr.<name>`.
    pub(super) fn lrs(&self, step: u64) -> impl Iterator<Item = (String, f64)> + '_ {
        self.slots
            .iter()
            .map(move |s| (format!("lr.{}", s.name()), s.lr(step)))
    }

    /// One AdamW update of a module from `grads` averaged over the ranks of `c`, with its
    /// learning rate at `step`, then its EMA update with decay `ema_decay(d, step)`; returns the
    /// gradient norm (of the average) before clipping. A non-finite norm changes nothing and is
    /// returned as `Ok(Err(norm))` (the same on every rank, since the ranks share the average).
    pub(super) fn update<M: Module + 'static>(
        &mut self,
        h: &Handle<M>,
        grads: &Gradients,
        step: u64,
        c: &dyn Collective,
    ) -> Result<std::result::Result<f64, f64>> {
        let slot = self.typed_mut(h);
        let lr = slot.spec.lr.at(step);
        let named = NamedGrads::new(slot.module(), grads).average(c)?;
        let norm = named.norm;
        if !norm.is_finite() {
            return Ok(Err(norm));
        }
        let module = slot
            .module
            .take()
            .expect("a module is present between updates");
        let module = slot.opt.apply(module, named, lr, slot.spec.grad_clip);
        if let (Some(ema), Some(d)) = (slot.ema.take(), slot.spec.ema_decay) {
            slot.ema = Some(ema_update(ema, &module, ema_decay(d, step)));
        }
        slot.module = Some(module);
        Ok(Ok(norm))
    }

    /// Replaces a module by `f(module)`: a change made outside its optimiser (its EMA copy, if
    /// any, is left as it is).
    pub(super) fn map<M: Module + 'static>(&mut self, h: &Handle<M>, f: impl FnOnce(M) -> M) {
        let slot = self.typed_mut(h);
        let module = slot
            .module
            .take()
            .expect("a module is present between updates");
        slot.module = Some(f(module));
    }

    /// Every module's tensors and metadata for a training-state file.
    pub(super) fn save(
        &self,
        tensors: &mut BTreeMap<String, HostTensor>,
        meta: &mut HashMap<String, String>,
    ) {
        for s in &self.slots {
            s.save(tensors, meta);
        }
    }

    /// Restores every module from a training-state file.
    pub(super) fn restore(&mut self, ck: &Loaded, path: &Path) -> Result<()> {
        for s in &mut self.slots {
            s.restore(ck, path)?;
        }
        Ok(())
    }
}
