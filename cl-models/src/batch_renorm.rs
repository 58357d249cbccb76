//! [`BatchRenorm2d`]: batch renormalisation (Ioffe, "Batch Renormalization", NeurIPS 2017) as
//! Avalanche's `BatchRenorm2D` (`avalanche/models/batch_renorm.py`), the normalisation of AR1.

use std::sync::{Arc, Mutex};

use burn::module::{Flag, Module, Param, RunningState};
use burn::tensor::Tensor;
use cl_core::BatchRenormSettings;

/// Batch renormalisation of `[batch, channels, height, width]` activations, step by step as
/// Avalanche's `BatchRenorm2D`:
///
/// - training (autodiff device and training flag on): with the batch's per-channel mean `μ` and
///   standard deviation `σ = √(var + ε)` (biased variance), `r = clip(σ / σ_run, 1/r_max,
///   r_max)` and `d = clip((μ − μ_run) / σ_run, −d_max, d_max)` (both without gradient),
///   `y = γ·((x − μ)·r / σ + d) + β`; then `r_max` and `d_max` each grow by
///   `r_d_max_inc_step × batch` while below their maxima (without clipping at the maximum, as
///   Avalanche), and `μ_run += momentum·(μ − μ_run)`, `σ_run += momentum·(σ − σ_run)` (a
///   running **standard deviation**, not a variance);
/// - evaluation: `y = γ·(x − μ_run) / σ_run + β` (no `ε`, as Avalanche).
///
/// The running statistics start at 0 and 1 (those of a fresh `BatchNorm2d`, which
/// Avalanche's `replace_bn_with_brn` copies). The settings ([`BatchRenormSettings`]) are host
/// values shared by the clones of a layer (the model's evaluation copies), changed with
/// [`set_settings`](Self::set_settings) (Avalanche's `change_brn_pars`).
#[doc(alias = "BatchRenorm2D")]
#[derive(Module, Debug)]
pub struct BatchRenorm2d {
    /// Scale `γ` per channel.
    pub gamma: Param<Tensor<1>>,
    /// Shift `β` per channel.
    pub beta: Param<Tensor<1>>,
    /// Training flag (off: the running statistics are used and kept).
    pub training: Param<Flag>,
    /// Running mean per channel.
    pub running_mean: RunningState<Tensor<1>>,
    /// Running standard deviation per channel.
    pub running_std: RunningState<Tensor<1>>,
    /// `ε` added to the batch variance (1e-5).
    pub epsilon: f64,
    #[module(skip)]
    settings: SharedSettings,
}

/// The settings, shared by the clones of a layer.
#[derive(Debug, Clone)]
struct SharedSettings(Arc<Mutex<BatchRenormSettings>>);

impl BatchRenorm2d {
    /// A layer of `channels` channels (γ = 1, β = 0, running mean 0 and standard deviation 1).
    pub fn new(channels: usize, settings: BatchRenormSettings, device: &burn::tensor::Device) -> Self {
        Self {
            gamma: Param::from_tensor(Tensor::ones([channels], device)),
            beta: Param::from_tensor(Tensor::zeros([channels], device)),
            training: Param::from_bool(true),
            running_mean: RunningState::new(Tensor::zeros([channels], device)),
            running_std: RunningState::new(Tensor::ones([channels], device)),
            epsilon: 1e-5,
            settings: SharedSettings(Arc::new(Mutex::new(settings))),
        }
    }

    /// The current settings (`r_max` and `d_max` as grown so far).
    pub fn settings(&self) -> BatchRenormSettings {
        *self.settings.0.lock().expect("batch-renorm settings poisoned")
    }

    /// Replaces the settings (Avalanche's `change_brn_pars`).
    pub fn set_settings(&self, settings: BatchRenormSettings) {
        *self.settings.0.lock().expect("batch-renorm settings poisoned") = settings;
    }

    /// Normalises `x` (`[batch, channels, height, width]`).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [_, c, _, _] = x.dims();
        let gamma = self.gamma.val().reshape([1, c, 1, 1]);
        let beta = self.beta.val().reshape([1, c, 1, 1]);
        if !(x.device().is_autodiff() && self.training.is_enabled()) {
            let device = x.device();
            let mean = self.running_mean.value_sync().to_device(&device).reshape([1, c, 1, 1]);
            let std = self.running_std.value_sync().to_device(&device).reshape([1, c, 1, 1]);
            return x.sub(mean).div(std).mul(gamma).add(beta);
        }
        let device = x.device();
        let settings = {
            let mut s = self.settings.0.lock().expect("batch-renorm settings poisoned");
            let now = *s;
            let n = x.dims()[0] as f64;
            if s.r_max < s.max_r_max {
                s.r_max += s.r_d_max_inc_step * n;
            }
            if s.d_max < s.max_d_max {
                s.d_max += s.r_d_max_inc_step * n;
            }
            now
        };
        let mean = x.clone().mean_dim(0).mean_dim(2).mean_dim(3); // [1, c, 1, 1]
        let centred = x.sub(mean.clone());
        let var = centred.clone().powi_scalar(2).mean_dim(0).mean_dim(2).mean_dim(3);
        let std = var.add_scalar(self.epsilon).sqrt();
        let run_mean = self.running_mean.value_sync().to_device(&device).reshape([1, c, 1, 1]);
        let run_std = self.running_std.value_sync().to_device(&device).reshape([1, c, 1, 1]);
        let (mean_d, std_d) = (mean.detach(), std.clone().detach());
        let r = std_d.clone().div(run_std.clone()).clamp(1.0 / settings.r_max, settings.r_max);
        let d = mean_d.clone().sub(run_mean.clone()).div(run_std.clone()).clamp(-settings.d_max, settings.d_max);
        let y = centred.mul(r).div(std).add(d).mul(gamma).add(beta);
        let m = settings.momentum;
        let new_mean = run_mean.clone().add(mean_d.sub(run_mean).mul_scalar(m));
        let new_std = run_std.clone().add(std_d.sub(run_std).mul_scalar(m));
        self.running_mean.update(new_mean.reshape([c]).detach());
        self.running_std.update(new_std.reshape([c]).detach());
        y
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
    }

    /// One channel, batch [1, 3] (2 samples of 1×1): μ = 2, σ = √(1 + ε) ≈ 1.
    #[test]
    fn training_step_matches_hand_computation() {
        let device = Device::default().autodiff();
        let s = BatchRenormSettings {
            momentum: 0.5,
            r_max: 1.5,
            d_max: 0.5,
            r_d_max_inc_step: 0.25,
            max_r_max: 2.0,
            max_d_max: 0.6,
        };
        let layer = BatchRenorm2d::new(1, s, &device);
        let x = Tensor::<4>::from_data(TensorData::new(vec![1.0f32, 3.0], [2, 1, 1, 1]), &device);
        let y = values(layer.forward(x));
        // r = clip(σ / 1, 1/1.5, 1.5) = σ → (x − μ)·r/σ = x − μ; d = clip(2, −0.5, 0.5) = 0.5.
        assert!((y[0] - (-1.0 + 0.5)).abs() < 1e-4 && (y[1] - (1.0 + 0.5)).abs() < 1e-4, "{y:?}");
        // running: μ_run = 0 + 0.5·2 = 1; σ_run = 1 + 0.5·(σ − 1) ≈ 1.
        assert!((values(layer.running_mean.value_sync())[0] - 1.0).abs() < 1e-5);
        assert!((values(layer.running_std.value_sync())[0] - 1.0).abs() < 1e-4);
        // r_max grows by 0.25 × 2 (below 2): 2.0; d_max 0.5 + 0.5 = 1.0 (past 0.6: no clip).
        let after = layer.settings();
        assert_eq!((after.r_max, after.d_max), (2.0, 1.0));
        // Second batch: r_max stays (not below 2); d_max stays (not below 0.6).
        let x = Tensor::<4>::from_data(TensorData::new(vec![0.0f32, 8.0], [2, 1, 1, 1]), &device);
        let y = values(layer.forward(x));
        // μ = 4, σ = 4 (ε aside): r = clip(4 / 1, 0.5, 2) = 2 → (x − μ)·2/4 = ∓2; d = clip((4 − 1)/1, ±1) = 1.
        assert!((y[0] - (-2.0 + 1.0)).abs() < 1e-4 && (y[1] - (2.0 + 1.0)).abs() < 1e-4, "{y:?}");
        assert_eq!(layer.settings().r_max, 2.0);
    }

    /// Evaluation uses the running statistics without ε, and leaves them (and the limits) as
    /// they are; so does a frozen (training flag off) layer on the autodiff device.
    #[test]
    fn evaluation_uses_running_statistics() {
        let device = Device::default();
        let layer = BatchRenorm2d::new(2, BatchRenormSettings::default(), &device);
        layer.running_mean.update(Tensor::from_data(TensorData::new(vec![1.0f32, -1.0], [2]), &device));
        layer.running_std.update(Tensor::from_data(TensorData::new(vec![2.0f32, 0.5], [2]), &device));
        let x = Tensor::<4>::from_data(TensorData::new(vec![3.0f32, 0.0], [1, 2, 1, 1]), &device);
        assert_eq!(values(layer.forward(x)), vec![1.0, 2.0]);
        assert_eq!(layer.settings(), BatchRenormSettings::default());
    }

    /// The gradient flows through the batch statistics (not through r and d): with r = 1, d = 0
    /// the layer is batch normalisation, whose output sums to β·n whatever x, so
    /// ∂Σy/∂x = 0.
    #[test]
    fn gradient_flows_through_batch_statistics() {
        let device = Device::default().autodiff();
        let layer = BatchRenorm2d::new(1, BatchRenormSettings::default(), &device);
        let x = Tensor::<4>::from_data(TensorData::new(vec![1.0f32, 2.0, 4.0], [3, 1, 1, 1]), &device).require_grad();
        let grads = layer.forward(x.clone()).sum().backward();
        let g = values(x.grad(&grads).unwrap());
        assert!(g.iter().all(|v| v.abs() < 1e-5), "{g:?}");
    }
}
