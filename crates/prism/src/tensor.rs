//! Small helpers between host data and tensors: per-sample scalars broadcast over images, seeded
//! Gaussian noise drawn on the host (so results do not depend on the backend's generator).

use burn::tensor::{Device, Tensor, TensorData};
use rand::Rng;
use rand_distr::StandardNormal;

/// `[B]` host values as a `[B, 1, 1, 1]` tensor, to scale a batch of images per sample.
pub fn per_sample(values: &[f64], device: &Device) -> Tensor<4> {
    let data: Vec<f32> = values.iter().map(|&v| v as f32).collect();
    Tensor::from_data(TensorData::new(data, [values.len(), 1, 1, 1]), device)
}

/// `[B]` host values as a `[B]` tensor.
pub fn vector(values: &[f64], device: &Device) -> Tensor<1> {
    let data: Vec<f32> = values.iter().map(|&v| v as f32).collect();
    Tensor::from_data(TensorData::new(data, [values.len()]), device)
}

/// Standard normal noise of `shape`, drawn from `rng`.
pub fn normal<R: Rng + ?Sized>(shape: [usize; 4], rng: &mut R, device: &Device) -> Tensor<4> {
    let n: usize = shape.iter().product();
    let data: Vec<f32> = (0..n)
        .map(|_| rng.sample::<f32, _>(StandardNormal))
        .collect();
    Tensor::from_data(TensorData::new(data, shape), device)
}

/// A tensor's values as `f32` on the host.
pub fn to_vec<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("float tensor converts to f32")
}

/// A scalar tensor's value.
pub fn scalar<const D: usize>(tensor: Tensor<D>) -> f64 {
    to_vec(tensor.reshape([-1]))[0] as f64
}

/// An integer tensor's values on the host.
pub fn to_vec_int(tensor: Tensor<1, burn::tensor::Int>) -> Vec<i64> {
    tensor
        .into_data()
        .convert::<i64>()
        .try_into_vec::<i64>()
        .expect("int tensor converts to i64")
}
