//! Image transforms as batched gathers on tensors: fixed pixel permutations and rotations (the
//! per-experience transforms of PermutedMNIST/RotatedMNIST) and seeded random crops and flips
//! (the usual CIFAR augmentation).
//!
//! Each transform maps output positions to input positions; a batch is transformed with one
//! `select` (fixed maps) or one `gather` (per-sample random maps) and, where pixels fall outside
//! the image, one multiplication by a mask (the fill value is 0, before normalisation).

use burn::tensor::{Int, Tensor, TensorData};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::transform::{Transform, TransformSpec};
use crate::error::{ClError, Result};

fn image_dims(sample_shape: &[usize], what: &str) -> Result<(usize, usize, usize)> {
    match sample_shape {
        [c, h, w] => Ok((*c, *h, *w)),
        other => Err(ClError::config("transform", format!("{what} needs samples of shape [C, H, W], got {other:?}"))),
    }
}

fn index_tensor(indices: Vec<i64>, shape: [usize; 2], x: &Tensor<2>) -> Tensor<2, Int> {
    Tensor::<2, Int>::from_data(TensorData::new(indices, shape), &x.device())
}

/// A fixed permutation of the values of each sample: output value `i` is input value
/// `permutation[i]` (Avalanche's `PixelsPermutation`, applied to the flattened image).
///
/// ```
/// use cl_core::data::PixelPermutation;
/// assert!(PixelPermutation::new(vec![2, 0, 1]).is_ok());
/// assert!(PixelPermutation::new(vec![0, 0, 1]).is_err()); // not a bijection
/// ```
#[derive(Debug, Clone)]
pub struct PixelPermutation {
    permutation: Vec<usize>,
    indices: Vec<i64>,
}

impl PixelPermutation {
    /// Checks that `permutation` is a bijection of `0..len`.
    pub fn new(permutation: Vec<usize>) -> Result<Self> {
        let n = permutation.len();
        let mut seen = vec![false; n];
        for &p in &permutation {
            if p >= n || std::mem::replace(&mut seen[p], true) {
                return Err(ClError::config(
                    "permutation",
                    format!("{p} is out of range or repeated: a permutation of 0..{n} is needed"),
                ));
            }
        }
        let indices = permutation.iter().map(|&p| p as i64).collect();
        Ok(Self { permutation, indices })
    }

    /// A random permutation of `0..len` drawn from `rng`.
    pub fn random(len: usize, rng: &mut ChaCha8Rng) -> Self {
        use rand::seq::SliceRandom;
        let mut permutation: Vec<usize> = (0..len).collect();
        permutation.shuffle(rng);
        Self::new(permutation).expect("a shuffle is a permutation")
    }

    /// The permutation.
    pub fn permutation(&self) -> &[usize] {
        &self.permutation
    }
}

impl Transform for PixelPermutation {
    fn spec(&self) -> Option<TransformSpec> {
        Some(TransformSpec::PixelPermutation { permutation: self.permutation.clone() })
    }

    fn check(&self, sample_shape: &[usize]) -> Result<()> {
        let len = crate::data::checked_sample_len(sample_shape)?;
        if len != self.permutation.len() {
            return Err(ClError::config(
                "permutation",
                format!("a permutation of {} values for samples of {len}", self.permutation.len()),
            ));
        }
        Ok(())
    }

    fn apply(&self, x: Tensor<2>, _sample_shape: &[usize], _rng: &mut ChaCha8Rng) -> Tensor<2> {
        let n = self.indices.len();
        let idx = Tensor::<1, Int>::from_data(TensorData::new(self.indices.clone(), [n]), &x.device());
        x.select(1, idx)
    }
}

/// A fixed rotation of every image by `degrees` (counter-clockwise, about the image centre),
/// nearest-neighbour sampling, pixels from outside the image set to 0 — as torchvision's
/// `rotate(img, angle)` used by Avalanche's RotatedMNIST.
#[derive(Debug, Clone)]
pub struct Rotation {
    degrees: f32,
    shape: (usize, usize, usize),
    indices: Vec<i64>,
    mask: Option<Vec<f32>>,
}

impl Rotation {
    /// A rotation of images of shape `[channels, height, width]`.
    pub fn new(degrees: f32, sample_shape: &[usize]) -> Result<Self> {
        if !degrees.is_finite() {
            return Err(ClError::config("rotation", format!("{degrees} is not a finite angle")));
        }
        let (c, h, w) = image_dims(sample_shape, "Rotation")?;
        let (sin, cos) = (degrees.to_radians() as f64).sin_cos();
        let (cy, cx) = ((h as f64 - 1.0) / 2.0, (w as f64 - 1.0) / 2.0);
        let mut indices = Vec::with_capacity(c * h * w);
        let mut mask = Vec::with_capacity(c * h * w);
        let mut outside = false;
        for ch in 0..c {
            for i in 0..h {
                for j in 0..w {
                    // Inverse map: rotate the output position by -angle (image y axis points down).
                    let (dy, dx) = (i as f64 - cy, j as f64 - cx);
                    let sx = cos * dx - sin * dy + cx;
                    let sy = sin * dx + cos * dy + cy;
                    let (si, sj) = (sy.round(), sx.round());
                    if si >= 0.0 && sj >= 0.0 && (si as usize) < h && (sj as usize) < w {
                        indices.push((ch * h * w + si as usize * w + sj as usize) as i64);
                        mask.push(1.0);
                    } else {
                        indices.push(0);
                        mask.push(0.0);
                        outside = true;
                    }
                }
            }
        }
        Ok(Self { degrees, shape: (c, h, w), indices, mask: outside.then_some(mask) })
    }

    /// The angle in degrees.
    pub fn degrees(&self) -> f32 {
        self.degrees
    }
}

impl Transform for Rotation {
    fn spec(&self) -> Option<TransformSpec> {
        Some(TransformSpec::Rotation {
            degrees: self.degrees,
            sample_shape: vec![self.shape.0, self.shape.1, self.shape.2],
        })
    }

    fn check(&self, sample_shape: &[usize]) -> Result<()> {
        let dims = image_dims(sample_shape, "Rotation")?;
        if dims != self.shape {
            return Err(ClError::config(
                "rotation",
                format!("built for images {:?}, samples are {sample_shape:?}", self.shape),
            ));
        }
        Ok(())
    }

    fn apply(&self, x: Tensor<2>, _sample_shape: &[usize], _rng: &mut ChaCha8Rng) -> Tensor<2> {
        let n = self.indices.len();
        let device = x.device();
        let idx = Tensor::<1, Int>::from_data(TensorData::new(self.indices.clone(), [n]), &device);
        let out = x.select(1, idx);
        match &self.mask {
            Some(mask) => out * Tensor::<2>::from_data(TensorData::new(mask.clone(), [1, n]), &device),
            None => out,
        }
    }
}

/// Random crop of `height × width` after zero padding of `padding` pixels on each side, drawn
/// per sample (torchvision's `RandomCrop(size, padding)`).
#[derive(Debug, Clone)]
pub struct RandomCrop {
    height: usize,
    width: usize,
    padding: usize,
}

impl RandomCrop {
    /// A crop of `height × width` with `padding`.
    pub fn new(height: usize, width: usize, padding: usize) -> Result<Self> {
        if height == 0 || width == 0 {
            return Err(ClError::config("random_crop", "the crop size must be positive"));
        }
        // Offsets are computed as isize around the padded image: keep them representable.
        if padding > (isize::MAX as usize) / 4 {
            return Err(ClError::config(
                "random_crop",
                format!("padding {padding} is too large (at most {})", (isize::MAX as usize) / 4),
            ));
        }
        Ok(Self { height, width, padding })
    }
}

impl Transform for RandomCrop {
    fn spec(&self) -> Option<TransformSpec> {
        Some(TransformSpec::RandomCrop { height: self.height, width: self.width, padding: self.padding })
    }

    fn output_shape(&self, input: &[usize]) -> Vec<usize> {
        vec![input[0], self.height, self.width]
    }

    fn check(&self, sample_shape: &[usize]) -> Result<()> {
        let (_, h, w) = image_dims(sample_shape, "RandomCrop")?;
        let padded = |side: usize| self.padding.checked_mul(2).and_then(|p| side.checked_add(p));
        let (Some(ph), Some(pw)) = (padded(h), padded(w)) else {
            return Err(ClError::config(
                "random_crop",
                format!("{h}×{w} images padded by {} overflow the image size", self.padding),
            ));
        };
        if self.height > ph || self.width > pw {
            return Err(ClError::config(
                "random_crop",
                format!("a {}×{} crop does not fit {h}×{w} images padded by {}", self.height, self.width, self.padding),
            ));
        }
        Ok(())
    }

    fn apply(&self, x: Tensor<2>, sample_shape: &[usize], rng: &mut ChaCha8Rng) -> Tensor<2> {
        let (c, h, w) = (sample_shape[0], sample_shape[1], sample_shape[2]);
        let [b, _] = x.dims();
        let (oh, ow, p) = (self.height, self.width, self.padding as isize);
        let out_len = c * oh * ow;
        let mut indices = Vec::with_capacity(b * out_len);
        let mut mask = Vec::with_capacity(b * out_len);
        for _ in 0..b {
            // Top-left corner of the crop in padded coordinates, shifted back to the image.
            let top = rng.random_range(0..=(h + 2 * self.padding - oh)) as isize - p;
            let left = rng.random_range(0..=(w + 2 * self.padding - ow)) as isize - p;
            for ch in 0..c {
                for i in 0..oh as isize {
                    for j in 0..ow as isize {
                        let (si, sj) = (top + i, left + j);
                        if si >= 0 && sj >= 0 && (si as usize) < h && (sj as usize) < w {
                            indices.push((ch * h * w + si as usize * w + sj as usize) as i64);
                            mask.push(1.0f32);
                        } else {
                            indices.push(0);
                            mask.push(0.0);
                        }
                    }
                }
            }
        }
        let device = x.device();
        let idx = index_tensor(indices, [b, out_len], &x);
        x.gather(1, idx) * Tensor::<2>::from_data(TensorData::new(mask, [b, out_len]), &device)
    }
}

/// Mirrors each image left-right with probability `p`, drawn per sample (torchvision's
/// `RandomHorizontalFlip(p)`).
#[derive(Debug, Clone)]
pub struct RandomHorizontalFlip {
    p: f64,
}

impl RandomHorizontalFlip {
    /// A flip with probability `p` in `[0, 1]`.
    pub fn new(p: f64) -> Result<Self> {
        if !(0.0..=1.0).contains(&p) {
            return Err(ClError::config("random_horizontal_flip", format!("{p} is not a probability")));
        }
        Ok(Self { p })
    }
}

impl Transform for RandomHorizontalFlip {
    fn spec(&self) -> Option<TransformSpec> {
        Some(TransformSpec::RandomHorizontalFlip { p: self.p })
    }

    fn check(&self, sample_shape: &[usize]) -> Result<()> {
        image_dims(sample_shape, "RandomHorizontalFlip").map(|_| ())
    }

    fn apply(&self, x: Tensor<2>, sample_shape: &[usize], rng: &mut ChaCha8Rng) -> Tensor<2> {
        let (c, h, w) = (sample_shape[0], sample_shape[1], sample_shape[2]);
        let [b, len] = x.dims();
        let flips: Vec<bool> = (0..b).map(|_| rng.random_bool(self.p)).collect();
        if !flips.contains(&true) {
            return x;
        }
        let mut indices = Vec::with_capacity(b * len);
        for flip in flips {
            for ch in 0..c {
                for i in 0..h {
                    for j in 0..w {
                        let sj = if flip { w - 1 - j } else { j };
                        indices.push((ch * h * w + i * w + sj) as i64);
                    }
                }
            }
        }
        let idx = index_tensor(indices, [b, len], &x);
        x.gather(1, idx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;
    use rand::SeedableRng;

    fn batch(values: Vec<f32>, b: usize) -> Tensor<2> {
        let n = values.len() / b;
        Tensor::from_data(TensorData::new(values, [b, n]), &Device::default())
    }

    fn rows(t: Tensor<2>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    fn rng() -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(3)
    }

    #[test]
    fn permutation_is_a_gather_of_the_flattened_sample() {
        let p = PixelPermutation::new(vec![3, 0, 2, 1]).unwrap();
        let out = p.apply(batch(vec![10., 11., 12., 13., 20., 21., 22., 23.], 2), &[1, 2, 2], &mut rng());
        assert_eq!(rows(out), vec![13., 10., 12., 11., 23., 20., 22., 21.]);
        assert!(p.check(&[1, 3, 3]).is_err());
        let r = PixelPermutation::random(784, &mut rng());
        let mut sorted = r.permutation().to_vec();
        sorted.sort();
        assert_eq!(sorted, (0..784).collect::<Vec<_>>());
    }

    #[test]
    fn rotations_by_quarter_turns_are_exact() {
        // 3×3 image, values = position.
        let img: Vec<f32> = (0..9).map(|v| v as f32).collect();
        let r90 = Rotation::new(90.0, &[1, 3, 3]).unwrap();
        // Counter-clockwise: the top row becomes the left column, read bottom-up.
        assert_eq!(
            rows(r90.apply(batch(img.clone(), 1), &[1, 3, 3], &mut rng())),
            vec![2., 5., 8., 1., 4., 7., 0., 3., 6.]
        );
        let r0 = Rotation::new(0.0, &[1, 3, 3]).unwrap();
        assert_eq!(rows(r0.apply(batch(img.clone(), 1), &[1, 3, 3], &mut rng())), img);
        // 45° on a 4×4 image takes the corners from outside: they are filled with 0.
        let r45 = Rotation::new(45.0, &[1, 4, 4]).unwrap();
        let out = rows(r45.apply(batch(vec![1.0; 16], 1), &[1, 4, 4], &mut rng()));
        assert_eq!((out[0], out[3], out[12], out[15]), (0.0, 0.0, 0.0, 0.0));
        assert_eq!((out[5], out[6], out[9], out[10]), (1.0, 1.0, 1.0, 1.0));
        assert!(r90.check(&[1, 4, 4]).is_err());
        assert!(Rotation::new(f32::NAN, &[1, 3, 3]).is_err());
    }

    #[test]
    fn random_crop_with_padding_shifts_each_sample_within_bounds() {
        let img: Vec<f32> = (1..=16).map(|v| v as f32).collect();
        let crop = RandomCrop::new(4, 4, 1).unwrap();
        crop.check(&[1, 4, 4]).unwrap();
        let x = batch([img.clone(), img.clone(), img.clone(), img.clone()].concat(), 4);
        let out = rows(crop.apply(x, &[1, 4, 4], &mut rng()));
        for s in out.chunks(16) {
            // Each output is the image shifted by at most one pixel, zeros where padded.
            let kept: Vec<f32> = s.iter().copied().filter(|&v| v != 0.0).collect();
            assert!(kept.len() >= 9, "{s:?}");
            assert!(kept.iter().all(|v| img.contains(v)));
        }
        // No padding and full size: identity.
        let same = RandomCrop::new(4, 4, 0).unwrap();
        assert_eq!(rows(same.apply(batch(img.clone(), 1), &[1, 4, 4], &mut rng())), img);
        assert!(RandomCrop::new(9, 9, 0).unwrap().check(&[1, 4, 4]).is_err());
    }

    #[test]
    fn flips_mirror_rows_per_sample_and_are_seeded() {
        let img = vec![1., 2., 3., 4., 5., 6.]; // 1×2×3
        let always = RandomHorizontalFlip::new(1.0).unwrap();
        assert_eq!(rows(always.apply(batch(img.clone(), 1), &[1, 2, 3], &mut rng())), vec![3., 2., 1., 6., 5., 4.]);
        let never = RandomHorizontalFlip::new(0.0).unwrap();
        assert_eq!(rows(never.apply(batch(img.clone(), 1), &[1, 2, 3], &mut rng())), img);
        let half = RandomHorizontalFlip::new(0.5).unwrap();
        let x = || batch(img.repeat(16), 16);
        let a = rows(half.apply(x(), &[1, 2, 3], &mut rng()));
        let b = rows(half.apply(x(), &[1, 2, 3], &mut rng()));
        assert_eq!(a, b, "same seed, same flips");
        let flipped = a.chunks(6).filter(|s| s[0] == 3.0).count();
        assert!(flipped > 0 && flipped < 16);
        assert!(RandomHorizontalFlip::new(1.5).is_err());
    }
}
