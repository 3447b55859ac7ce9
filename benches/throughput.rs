//! Throughput: sandboxes per second on this machine, each running `/bin/true` in the default
//! sandbox (new user, PID, mount, UTS and IPC namespaces, a fresh `/proc`, the default
//! hardening), in batches of 64 started at once (cargo feature `tokio`):
//!
//! - `async_2_workers`: `Sandbox::spawn_async` on a 2-worker tokio runtime, every wait a
//!   future;
//! - `sync_threads/N`: the sync face on N threads, each spawning and waiting in turn;
//! - `tokio_process_bwrap`: `tokio::process::Command` running bubblewrap with the same
//!   isolation (`--unshare-user --unshare-pid --unshare-uts --unshare-ipc --bind / / --proc
//!   /proc`), when `/usr/bin/bwrap` is installed.
//!
//! criterion reports each as elements (sandboxes) per second:
//! `cargo bench --features tokio --bench throughput`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use nscell::Sandbox;
use std::time::Duration;

const BATCH: usize = 64;
const TRUE: &str = "/bin/true";
const BWRAP: &str = "/usr/bin/bwrap";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn throughput(c: &mut Criterion) {
    let mut group = c.benchmark_group("throughput");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(8));
    group.throughput(Throughput::Elements(BATCH as u64));

    let rt = runtime();
    group.bench_function("async_2_workers", |b| {
        b.iter(|| {
            rt.block_on(async {
                let tasks: Vec<_> = (0..BATCH)
                    .map(|_| {
                        tokio::spawn(async {
                            let status = Sandbox::new(TRUE)
                                .spawn_async()
                                .expect("spawn")
                                .wait()
                                .await
                                .expect("wait");
                            assert!(status.success());
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.expect("task");
                }
            })
        })
    });

    for threads in [2usize, 8] {
        group.bench_function(format!("sync_threads/{threads}"), |b| {
            b.iter(|| {
                std::thread::scope(|s| {
                    for _ in 0..threads {
                        s.spawn(|| {
                            let mut sb = Sandbox::new(TRUE);
                            for _ in 0..BATCH / threads {
                                assert!(sb.status().expect("spawn").success());
                            }
                        });
                    }
                })
            })
        });
    }

    if std::path::Path::new(BWRAP).exists() {
        group.bench_function("tokio_process_bwrap", |b| {
            b.iter(|| {
                rt.block_on(async {
                    let tasks: Vec<_> = (0..BATCH)
                        .map(|_| {
                            tokio::spawn(async {
                                let status = tokio::process::Command::new(BWRAP)
                                    .args(["--unshare-user", "--unshare-pid", "--unshare-uts"])
                                    .args(["--unshare-ipc", "--bind", "/", "/", "--proc", "/proc"])
                                    .arg(TRUE)
                                    .status()
                                    .await
                                    .expect("bwrap");
                                assert!(status.success());
                            })
                        })
                        .collect();
                    for t in tasks {
                        t.await.expect("task");
                    }
                })
            })
        });
    } else {
        eprintln!("{BWRAP} is not installed: tokio_process_bwrap skipped");
    }
    group.finish();
}

criterion_group!(benches, throughput);
criterion_main!(benches);
