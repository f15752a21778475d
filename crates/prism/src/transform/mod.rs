//! ② Pure, exactly invertible image transforms, differentiable through burn ops.

pub mod dwt;
