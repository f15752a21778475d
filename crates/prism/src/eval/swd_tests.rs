//! Tests of the Laplacian pyramid and the sliced Wasserstein distance.

use super::*;

/// Against OpenCV's `pyrDown`/`pyrUp` (`tools/golden_pyramid.py` → `tests/data/pyramid.json`).
#[test]
fn pyramid_matches_opencv() {
    let g = crate::golden_data::load("pyramid.json");
    let floats = crate::golden_data::f32s;
    for case in g["cases"].as_array().unwrap() {
        let shape: Vec<usize> = crate::golden_data::f64s(&case["shape"])
            .into_iter()
            .map(|v| v as usize)
            .collect();
        let img = Planes {
            c: shape[2],
            h: shape[0],
            w: shape[1],
            data: floats(&case["image"]),
        };
        let down = pyr_down(&img);
        let up = pyr_up(&down, img.h, img.w);
        for (key, got) in [("down", &down.data), ("up", &up.data)] {
            let want = floats(&case[key]);
            assert_eq!(got.len(), want.len(), "{} {key}", case["name"]);
            for (a, b) in got.iter().zip(&want) {
                assert!((a - b).abs() < 1e-5, "{} {key}: {a} vs {b}", case["name"]);
            }
        }
        let lap = &laplacian_pyramid(&img, down.h.min(down.w))[0];
        for (a, b) in lap.data.iter().zip(floats(&case["laplacian"])) {
            assert!((a - b).abs() < 1e-5, "{} laplacian", case["name"]);
        }
    }
}

#[test]
fn reflect101_mirrors_without_repeating_the_edge() {
    let idx: Vec<usize> = (-3..7).map(|i| reflect101(i, 4)).collect();
    assert_eq!(idx, vec![3, 2, 1, 0, 1, 2, 3, 2, 1, 0]);
}

#[test]
fn laplacian_pyramid_reconstructs_the_image() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let img = Planes {
        c: 2,
        h: 32,
        w: 32,
        data: (0..2048).map(|_| rng.random_range(-1.0..1.0)).collect(),
    };
    let pyr = laplacian_pyramid(&img, 16);
    assert_eq!(pyr.iter().map(|p| p.h).collect::<Vec<_>>(), vec![32, 16]);
    let up = pyr_up(&pyr[1], 32, 32);
    for ((r, l), u) in img.data.iter().zip(&pyr[0].data).zip(&up.data) {
        assert!((r - (l + u)).abs() < 1e-5);
    }
}

fn fashion(n: usize, skip: usize) -> Vec<Planes> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/fashion-mnist/t10k-images-idx3-ubyte.gz");
    let (_, h, w, px) = crate::data::read_idx_images(&path).unwrap();
    (skip..skip + n)
        .map(|i| Planes {
            c: 1,
            h,
            w,
            data: px[i * h * w..(i + 1) * h * w]
                .iter()
                .map(|&v| v as f32 / 127.5 - 1.0)
                .collect(),
        })
        .collect()
}

/// Two halves of real data are much closer than real data and noise (28 px: one Laplacian level + 14 px base
/// would be below 16, so the pyramid here is [28] with min_size 14).
#[test]
fn separates_real_from_noise() {
    let o = SwdOptions {
        min_size: 14,
        patches_per_image: 32,
        ..SwdOptions::default()
    };
    let a = fashion(100, 0);
    let b = fashion(100, 5000);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let noise: Vec<Planes> = (0..100)
        .map(|_| Planes {
            c: 1,
            h: 28,
            w: 28,
            data: (0..784)
                .map(|_| rng.sample::<f32, _>(StandardNormal).clamp(-1.0, 1.0))
                .collect(),
        })
        .collect();
    let real = swd(&a, &b, &o).unwrap();
    let fake = swd(&a, &noise, &o).unwrap();
    assert_eq!(real.resolutions, vec![28, 14]);
    assert!(
        fake.mean > 5.0 * real.mean,
        "real {:?} vs noise {:?}",
        real,
        fake
    );
    assert!(swd(&a, &b[..10], &o).is_err());
}
