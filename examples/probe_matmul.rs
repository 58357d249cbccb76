use std::time::Instant;
use cl::burn::tensor::{Distribution, Tensor};
fn main() {
    let device = cl::default_device();
    let x = Tensor::<2>::random([128, 784], Distribution::Default, &device);
    let w = Tensor::<2>::random([784, 512], Distribution::Default, &device);
    let g = Tensor::<2>::random([128, 512], Distribution::Default, &device);
    for (name, f) in [
        ("fwd x@W [128x784]@[784x512]", 0),
        ("gradW x^T@g [784x128]@[128x512]", 1),
        ("gradX g@W^T [128x512]@[512x784]", 2),
        ("eval [1000x784]@[784x512]", 3),
    ] {
        let xe = Tensor::<2>::random([1000, 784], Distribution::Default, &device);
        let run = || match f {
            0 => x.clone().matmul(w.clone()),
            1 => x.clone().transpose().matmul(g.clone()),
            2 => g.clone().matmul(w.clone().transpose()),
            _ => xe.clone().matmul(w.clone()),
        };
        for _ in 0..20 { let _ = run().into_data(); }
        let n = 200;
        let t = Instant::now();
        for _ in 0..n { let _ = run().into_data(); }
        let dt = t.elapsed().as_secs_f64() / n as f64;
        let rows = if f == 3 { 1000.0 } else { 128.0 };
        let flops = 2.0 * rows * 784.0 * 512.0;
        println!("{name}: {:.3} ms, {:.1} GFLOP/s", dt * 1e3, flops / dt / 1e9);
    }
}
