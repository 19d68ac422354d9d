//! The linear classifier: logits, softmax and renormalisation, reproducing
//! onnxruntime's `LinearClassifier` (float32) bit for bit.
//!
//! onnxruntime computes the logits with an SGEMM call that, for a single
//! input row, lands in MLAS's `SgemmKernelM1TransposeBAvx`: eight float32
//! accumulator lanes (lane = feature index mod 8, multiply then add, no FMA)
//! reduced pairwise, then the intercept added. With three classes the kernel
//! handles classes 0 and 1 in its two-row path and class 2 in its one-row
//! path, whose reduction orders differ. Zero entries of the dense vector add
//! exact zeros, so only non-zero features need to be visited.
//!
//! Post-processing: `ComputeSoftmax` (max-shifted `expf`, sequential sum,
//! division) and the graph's final `Normalizer(L1)`.

use super::{
    features::Feature,
    model::{LinearModel, N_CLASSES},
};

/// Logits (before softmax) of each class.
pub fn logits(model: &LinearModel, features: &[Feature<'_>]) -> [f32; N_CLASSES] {
    let mut lanes = [[0.0_f32; 8]; N_CLASSES];
    for f in features {
        if let Some(w) = f.term.weights {
            let lane = (f.term.index % 8) as usize;
            for c in 0..N_CLASSES {
                lanes[c][lane] += f.value * w[c];
            }
        }
    }
    let two_row = |l: &[f32; 8]| ((l[0] + l[2]) + (l[4] + l[6])) + ((l[1] + l[3]) + (l[5] + l[7]));
    let one_row = |l: &[f32; 8]| ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
    [
        two_row(&lanes[0]) + model.intercepts[0],
        two_row(&lanes[1]) + model.intercepts[1],
        one_row(&lanes[2]) + model.intercepts[2],
    ]
}

/// Index of the largest logit (the first one on ties), as `LinearClassifier` labels.
pub fn argmax(logits: &[f32; N_CLASSES]) -> usize {
    let mut best = 0;
    for c in 1..N_CLASSES {
        if logits[c] > logits[best] {
            best = c;
        }
    }
    best
}

/// Softmax followed by L1 renormalisation, in float32.
pub fn probabilities(logits: &[f32; N_CLASSES]) -> [f32; N_CLASSES] {
    let max = logits
        .iter()
        .fold(-f32::MAX, |m, &v| if v > m { v } else { m });
    let exps = logits.map(|v| (v - max).exp());
    let sum = exps.iter().fold(0.0_f32, |acc, &e| acc + e);
    let soft = exps.map(|e| e / sum);
    let l1 = soft.iter().fold(0.0_f32, |acc, &p| acc + p.abs());
    if l1 != 0.0 {
        soft.map(|p| p / l1)
    } else {
        soft
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probabilities_sum_to_one() {
        let p = probabilities(&[1.0, 2.0, -3.0]);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(p[1] > p[0] && p[0] > p[2]);
        assert_eq!(argmax(&[1.0, 2.0, 2.0]), 1);
    }
}
