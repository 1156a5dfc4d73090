//! A version whose runs are short may run a call on the async thread that
//! received it, but only when its one session is free: a call never waits
//! for another call on an async thread.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use hotswap_data_plane::backend::Model;
use hotswap_data_plane::backend::onnx::OnnxModel;
use hotswap_data_plane::tensor::{Tensor, TensorData};
use hotswap_integration_tests::process::runtimes;
use hotswap_integration_tests::worker::fixture;

fn rows(n: usize) -> Vec<Tensor> {
    let data = TensorData::F32((0..n * 4).map(|i| (i % 4) as f32).collect());
    vec![Tensor::new("x", vec![n as i64, 4], data).unwrap()]
}

#[test]
fn a_busy_session_gives_the_inputs_back_untouched() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("model.onnx"), fixture("total")).unwrap();
    let model = Arc::new(OnnxModel::load(dir.path(), &runtimes()).unwrap());

    let out = model
        .try_infer_now(rows(1), &[])
        .expect("a free session runs the call now")
        .unwrap();
    assert_eq!(out[0].data, TensorData::F32(vec![6.0]));

    // Another caller keeps the session busy with sums over 8M elements.
    let stop = Arc::new(AtomicBool::new(false));
    let busy = std::thread::spawn({
        let (model, stop) = (model.clone(), stop.clone());
        let big = rows(1 << 21);
        move || {
            let mut runs = 0;
            while !stop.load(Ordering::Relaxed) {
                let out = model.infer(big.clone(), &[]).unwrap();
                assert_eq!(out[0].data, TensorData::F32(vec![6.0 * (1 << 21) as f32]));
                runs += 1;
            }
            runs
        }
    });
    let mut given_back = None;
    for _ in 0..20_000 {
        match model.try_infer_now(rows(1), &[]) {
            Err(inputs) => {
                given_back = Some(inputs);
                break;
            }
            Ok(out) => assert_eq!(out.unwrap()[0].data, TensorData::F32(vec![6.0])),
        }
        std::thread::sleep(std::time::Duration::from_micros(100));
    }
    stop.store(true, Ordering::Relaxed);
    let runs = busy.join().unwrap();
    assert!(runs > 0);
    assert_eq!(
        given_back.expect("a session busy with another call was never seen busy"),
        rows(1)
    );
}
