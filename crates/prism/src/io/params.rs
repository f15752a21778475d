//! Parameters by name: every float parameter of a module under its path (`down.0.blocks.1.res.conv1.weight`),
//! copied to the host or replaced from host data. Checkpoints, the optimizer state and the EMA
//! are all keyed by these names, so they survive a rebuild of the module.

use std::collections::BTreeMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{Gradients, Tensor, TensorData};

use super::checkpoint::check_matches;
use crate::Result;
use crate::tensor::to_vec;

/// A tensor on the host.
#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    /// Shape.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub data: Vec<f32>,
}

#[derive(Default)]
struct Path(Vec<String>);

impl Path {
    fn enter(&mut self, name: &str) {
        self.0.push(name.to_string());
    }
    fn exit(&mut self) {
        self.0.pop();
    }
    fn joined(&self) -> String {
        self.0.join(".")
    }
}

/// What to do with each float parameter, given its path (see [`visit_by_path`]).
trait ParamVisit {
    fn float<const D: usize>(&mut self, path: String, param: Tensor<D>);
}

/// Walks `module`, keeping track of each parameter's path for `visit`.
fn visit_by_path<M: Module, V: ParamVisit>(module: &M, visit: V) -> V {
    struct Walk<V> {
        path: Path,
        visit: V,
    }
    impl<V: ParamVisit> ModuleVisitor for Walk<V> {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.enter(name);
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.exit();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.visit.float(self.path.joined(), param.val());
        }
    }
    let mut walk = Walk {
        path: Path::default(),
        visit,
    };
    module.visit(&mut walk);
    walk.visit
}

/// All float parameters of `module`, by path.
pub fn host_params<M: Module>(module: &M) -> BTreeMap<String, HostTensor> {
    struct V(BTreeMap<String, HostTensor>);
    impl ParamVisit for V {
        fn float<const D: usize>(&mut self, path: String, t: Tensor<D>) {
            let shape = t.dims().to_vec();
            let data = to_vec(t);
            self.0.insert(path, HostTensor { shape, data });
        }
    }
    visit_by_path(module, V(BTreeMap::new())).0
}

/// The gradient of every float parameter that has one, by path, flattened.
pub fn grads_by_name<M: Module>(module: &M, grads: &Gradients) -> BTreeMap<String, Tensor<1>> {
    struct V<'a>(&'a Gradients, BTreeMap<String, Tensor<1>>);
    impl ParamVisit for V<'_> {
        fn float<const D: usize>(&mut self, path: String, t: Tensor<D>) {
            if let Some(g) = t.grad(self.0) {
                self.1.insert(path, g.reshape([-1]));
            }
        }
    }
    visit_by_path(module, V(grads, BTreeMap::new())).1
}

/// Every float parameter by path, flattened, detached from autodiff (on the inner device).
pub fn grads_free_flat_params<M: Module>(module: &M) -> BTreeMap<String, Tensor<1>> {
    struct V(BTreeMap<String, Tensor<1>>);
    impl ParamVisit for V {
        fn float<const D: usize>(&mut self, path: String, t: Tensor<D>) {
            let t = if t.is_autodiff() { t.inner() } else { t };
            self.0.insert(path, t.reshape([-1]));
        }
    }
    visit_by_path(module, V(BTreeMap::new())).0
}

/// Replaces every float parameter by `f(path, current) → new` (same shape, flattened).
/// Autodiff parameters keep requiring gradients.
pub fn map_params<M: Module>(module: M, f: impl FnMut(&str, Tensor<1>) -> Tensor<1>) -> M {
    struct Mapper<F> {
        path: Path,
        f: F,
    }
    impl<F: FnMut(&str, Tensor<1>) -> Tensor<1>> ModuleMapper for Mapper<F> {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.enter(name);
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.exit();
        }
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let (id, tensor, mapper) = param.consume();
            let shape = tensor.shape();
            let require_grad = tensor.is_require_grad();
            let autodiff = tensor.is_autodiff();
            let inner = if autodiff { tensor.inner() } else { tensor };
            let new = (self.f)(&self.path.joined(), inner.reshape([-1])).reshape(shape);
            let new = if autodiff {
                let t = Tensor::from_inner(new);
                if require_grad { t.require_grad() } else { t }
            } else {
                new
            };
            Param::from_mapped_value(id, new, mapper)
        }
    }
    module.map(&mut Mapper {
        path: Path::default(),
        f,
    })
}

/// Host data as a flat tensor on the device of `like`.
pub fn host_to_flat(t: &HostTensor, like: &Tensor<1>) -> Tensor<1> {
    Tensor::from_data(
        TensorData::new(t.data.clone(), [t.data.len()]),
        &like.device(),
    )
}

/// Replaces the weights of `module` by `tensors` (by parameter path), after checking that the
/// names and shapes match exactly; errors name `path` (the file they came from) and the tensor.
pub fn load_into<M: Module>(
    module: M,
    tensors: &BTreeMap<String, HostTensor>,
    path: &std::path::Path,
) -> Result<M> {
    check_matches(path, tensors, &host_params(&module))?;
    Ok(map_params(module, |name, like| {
        host_to_flat(&tensors[name], &like)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Linear, LinearConfig};
    use burn::tensor::Device;

    #[derive(Module, Debug)]
    struct Block {
        inner: Linear,
    }

    #[derive(Module, Debug)]
    struct Net {
        blocks: Vec<Block>,
        head: Linear,
    }

    fn net(device: &Device) -> Net {
        Net {
            blocks: (0..2)
                .map(|_| Block {
                    inner: LinearConfig::new(3, 3).init(device),
                })
                .collect(),
            head: LinearConfig::new(3, 2).init(device),
        }
    }

    #[test]
    fn names_are_unique_paths_and_round_trip() {
        let device = Device::flex();
        let a = net(&device);
        let p = host_params(&a);
        let total: usize = p.values().map(|t| t.data.len()).sum();
        assert_eq!(total, a.num_params(), "every parameter has its own name");
        assert!(
            p.contains_key("blocks.1.inner.weight") && p.contains_key("head.bias"),
            "{:?}",
            p.keys().collect::<Vec<_>>()
        );
        // Load a's weights into a freshly initialised b.
        let b = net(&device);
        let b = map_params(b, |name, like| host_to_flat(&p[name], &like));
        assert_eq!(host_params(&b), p);
        // load_into checks names and shapes, naming the file.
        let path = std::path::Path::new("w.safetensors");
        assert_eq!(host_params(&load_into(net(&device), &p, path).unwrap()), p);
        let mut missing = p.clone();
        missing.remove("head.bias");
        let e = load_into(net(&device), &missing, path)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("head.bias") && e.contains("w.safetensors"),
            "{e}"
        );
    }
}
