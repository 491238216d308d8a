//! Micro-benchmarks of the request path: event serialisation, token fingerprint, JWT
//! inspection (cached, cold HS256 and cold RS256), a whole audited request through the layer
//! (with its allocation count), enqueue under contention, and JSON-lines writer throughput.
//!
//! `cargo bench --bench layer` (scripts/bench runs it with short measurement times).

use std::alloc::{GlobalAlloc, Layout, System};
use std::convert::Infallible;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use oauth_audit::event::{AuditEvent, EventKind, Outcome, ServiceInfo, Timestamp};
use oauth_audit::token::{TokenFingerprint, TokenInspector};
use oauth_audit::writer::{AuditWriter, Auditor, JsonLines, WriteError};
use oauth_audit::{AuditLayer, PeerAddr, RequestBody};
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};

/// Counts allocations, to report allocations per audited request.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const SECRET: &[u8] = b"a-32-byte-long-secret-for-hs256!";

fn token(i: usize) -> String {
    let claims = serde_json::json!({"iss": "https://issuer.bench", "aud": "api", "sub": format!("user-{i}"),
        "client_id": "bench", "scope": "orders:read profile", "jti": format!("j-{i}"), "exp": 4_000_000_000u64});
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET),
    )
    .unwrap()
}

fn inspector(cache: usize) -> TokenInspector {
    TokenInspector::builder()
        .hmac_secret(Algorithm::HS256, SECRET)
        .issuer(["https://issuer.bench"])
        .audience(["api"])
        .cache_capacity(cache)
        .build()
        .unwrap()
}

/// Accepts and forgets events: measures the pipeline, not a disk.
struct Null;

impl AuditWriter for Null {
    fn name(&self) -> &str {
        "null"
    }
    async fn write(&mut self, batch: &[Arc<AuditEvent>]) -> Result<(), WriteError> {
        black_box(batch);
        Ok(())
    }
}

fn event() -> AuditEvent {
    let service = Arc::new(ServiceInfo::new("bench"));
    let mut e = AuditEvent::new(
        service,
        Timestamp::now(),
        EventKind::ResourceAccessed,
        Outcome::Success,
    );
    e.request_id = Some("01a20e31-b545-730f-85a6-76a822054a95".into());
    e.actor.subject = Some("alice".into());
    e.actor.client_id = Some("web".into());
    e.scopes.granted = Some(vec!["orders:read".into(), "profile".into()].into());
    e
}

fn micro(c: &mut Criterion) {
    let e = event();
    c.bench_function("event_serialize_json", |b| {
        b.iter(|| serde_json::to_vec(black_box(&e)).unwrap())
    });
    let jwt = token(0);
    c.bench_function("token_fingerprint", |b| {
        b.iter(|| TokenFingerprint::of(black_box(&jwt)))
    });
    let cached = inspector(1000);
    cached.inspect(&jwt);
    c.bench_function("jwt_inspect_cached", |b| {
        b.iter(|| cached.inspect(black_box(&jwt)))
    });
    let cold = inspector(1);
    let tokens: Vec<String> = (0..64).map(token).collect();
    let mut i = 0;
    c.bench_function("jwt_inspect_cold_hs256", |b| {
        b.iter(|| {
            i = (i + 1) % tokens.len();
            cold.inspect(black_box(&tokens[i]))
        })
    });
    // The same with RS256 (2048-bit key): one signature verification per inspection, what
    // `audited_cold` in scripts/bench pays on every request.
    let (rsa_cold, rsa_tokens) = rs256_cold();
    let mut i = 0;
    c.bench_function("jwt_inspect_cold_rs256", |b| {
        b.iter(|| {
            i = (i + 1) % rsa_tokens.len();
            rsa_cold.inspect(black_box(&rsa_tokens[i]))
        })
    });
}

/// An RS256 inspector with one cache slot, and 64 tokens signed for it.
fn rs256_cold() -> (TokenInspector, Vec<String>) {
    use pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
    let private = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
    let public = private
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    let private = private.to_pkcs8_pem(LineEnding::LF).unwrap();
    let signing = EncodingKey::from_rsa_pem(private.as_bytes()).unwrap();
    let inspector = TokenInspector::builder()
        .rsa_pem(Algorithm::RS256, public.as_bytes(), None)
        .issuer(["https://issuer.bench"])
        .audience(["api"])
        .cache_capacity(1)
        .build()
        .unwrap();
    let tokens = (0..64)
        .map(|i| {
            let claims = serde_json::json!({"iss": "https://issuer.bench", "aud": "api",
                "sub": format!("user-{i}"), "client_id": "bench", "scope": "orders:read profile",
                "jti": format!("j-{i}"), "exp": 4_000_000_000u64});
            encode(&Header::new(Algorithm::RS256), &claims, &signing).unwrap()
        })
        .collect();
    (inspector, tokens)
}

/// One request through `svc`, body read to its end, then one turn for the runtime's other
/// tasks: the audit writer runs on this same thread and writes what the request queued, so
/// its work (serialising, freeing) is counted with the request's. Without the turn the
/// writer task never ran while the benchmark did, and the queue only filled and overflowed.
async fn roundtrip<S, B>(svc: &mut S, req: Request<Full<Bytes>>)
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>>,
    S::Error: std::fmt::Debug,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let res = svc.ready().await.unwrap().call(req).await.unwrap();
    res.into_body().collect().await.unwrap();
    tokio::task::yield_now().await;
}

fn request_path(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (mut bare, mut audited, auditor) = rt.block_on(async {
        let handler = service_fn(|_req: Request<RequestBody<Full<Bytes>>>| async {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"[]"))))
        });
        let bare = service_fn(|_req: Request<Full<Bytes>>| async {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"[]"))))
        });
        let auditor = Auditor::builder()
            .queue_capacity(1 << 20)
            .writer(Null)
            .build()
            .unwrap();
        let layer = AuditLayer::builder(auditor.clone())
            .token_inspector(inspector(1000))
            .trusted_proxies(["10.0.0.0/8"])
            .build()
            .unwrap();
        (
            bare,
            ServiceBuilder::new().layer(layer).service(handler),
            auditor,
        )
    });
    let jwt = token(1);
    let request = || {
        let mut req = Request::get("/api/orders")
            .header("authorization", format!("Bearer {jwt}"))
            .header("user-agent", "bench/1.0")
            .header("x-forwarded-for", "198.51.100.7, 10.0.0.3")
            .body(Full::new(Bytes::new()))
            .unwrap();
        req.extensions_mut()
            .insert(PeerAddr("10.0.0.1:443".parse().unwrap()));
        req
    };
    c.bench_function("request_bare", |b| {
        b.iter(|| rt.block_on(roundtrip(&mut bare, request())))
    });
    c.bench_function("request_audited", |b| {
        b.iter(|| rt.block_on(roundtrip(&mut audited, request())))
    });
    // Forwarded-header parsing: the same request behind a chain of 8 hops, 7 of them trusted.
    let chained = || {
        let mut req = request();
        req.headers_mut().insert(
            "x-forwarded-for",
            "203.0.113.9, 198.51.100.7, 10.0.0.7, 10.0.0.6, 10.0.0.5, 10.0.0.4, 10.0.0.3, 10.0.0.2"
                .parse()
                .unwrap(),
        );
        req.headers_mut().insert(
            "forwarded",
            "for=198.51.100.7;proto=https, for=10.0.0.2"
                .parse()
                .unwrap(),
        );
        req
    };
    c.bench_function("request_audited_forwarded_8_hops", |b| {
        b.iter(|| rt.block_on(roundtrip(&mut audited, chained())))
    });
    // Allocations per request, audited minus bare (the request building is common).
    let count = |run: &mut dyn FnMut()| {
        run();
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        for _ in 0..1000 {
            run();
        }
        (ALLOCATIONS.load(Ordering::Relaxed) - before) as f64 / 1000.0
    };
    let bare_allocs = count(&mut || rt.block_on(roundtrip(&mut bare, request())));
    let audited_allocs = count(&mut || rt.block_on(roundtrip(&mut audited, request())));
    println!(
        "allocations per request: bare {bare_allocs:.1}, audited {audited_allocs:.1} (+{:.1} for the layer, including the background write)",
        audited_allocs - bare_allocs
    );
    // What the figures above stand for: every audited request's event was written, none
    // dropped (a writer that fell behind would leave its work out of the timings).
    rt.block_on(tokio::task::yield_now());
    let stats = &auditor.stats().writers[0];
    println!(
        "audited requests' events: {} written, {} dropped, {} still queued",
        stats.written, stats.dropped, stats.queued
    );
    assert_eq!(
        stats.dropped, 0,
        "the writer fell behind: the timings would leave its work out"
    );
}

/// Nanoseconds the calling thread has spent on a CPU.
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn pipeline(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let auditor = rt.block_on(async {
        Auditor::builder()
            .queue_capacity(1 << 16)
            .writer(Null)
            .build()
            .unwrap()
    });
    // Enqueue under contention: 1, 2, 4 and 8 threads calling `emit` at once, each event
    // built in the loop as a request would build it. The figure is wall time over all events
    // of the run (the machine's cost per event, not one thread's latency). On 2 cores, 4 and
    // 8 threads are more threads than cores: the kernel time-slices them, as it does request
    // threads on an overloaded server, and the writer task competes with them for the cores.
    // `event_build_contending` is the same loop without the queue (events built and dropped
    // on the thread), so the queue's own share is the difference between the two.
    let mut group = c.benchmark_group("enqueue_contending");
    // What each figure stands for: how many events were queued and written, and how many
    // found the queue full (a cheaper path: nothing crosses to the writer) and were dropped.
    let settle = |auditor: &Auditor| {
        rt.block_on(async {
            while auditor.stats().writers[0].queued > 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        let stats = &auditor.stats().writers[0];
        (stats.written, stats.dropped)
    };
    let mut outcomes = Vec::new();
    for threads in [1usize, 2, 4, 8] {
        let (written, dropped) = settle(&auditor);
        group.bench_with_input(
            criterion::BenchmarkId::from_parameter(threads),
            &threads,
            |b, &threads| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    std::thread::scope(|s| {
                        for _ in 0..threads {
                            let auditor = auditor.clone();
                            s.spawn(move || {
                                for _ in 0..iters {
                                    auditor.emit(event());
                                }
                            });
                        }
                    });
                    start.elapsed() / threads as u32
                })
            },
        );
        let (written_after, dropped_after) = settle(&auditor);
        outcomes.push(format!(
            "enqueue_contending/{threads} events: {} written, {} dropped (queue full)",
            written_after - written,
            dropped_after - dropped
        ));
    }
    group.finish();
    for outcome in outcomes {
        println!("{outcome}");
    }
    let mut group = c.benchmark_group("event_build_contending");
    for threads in [1usize, 2, 4, 8] {
        group.bench_with_input(
            criterion::BenchmarkId::from_parameter(threads),
            &threads,
            |b, &threads| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    std::thread::scope(|s| {
                        for _ in 0..threads {
                            s.spawn(move || {
                                for _ in 0..iters {
                                    drop(black_box(event()));
                                }
                            });
                        }
                    });
                    start.elapsed() / threads as u32
                })
            },
        );
    }
    group.finish();
    // The same loops timed by CPU rather than wall clock: nanoseconds on a CPU of the
    // emitting threads (from /proc/thread-self/schedstat) per event. Wall time on these
    // shared cores mostly says how long the threads waited for a core; this says what the
    // request path pays, whoever else runs.
    for threads in [1usize, 2, 4, 8] {
        let per_thread = 200_000;
        let run = |emit: bool| -> f64 {
            let on_cpu: u64 = std::thread::scope(|s| {
                let handles: Vec<_> = (0..threads)
                    .map(|_| {
                        let auditor = auditor.clone();
                        s.spawn(move || {
                            let start = thread_cpu_ns();
                            for _ in 0..per_thread {
                                if emit {
                                    auditor.emit(event());
                                } else {
                                    drop(black_box(event()));
                                }
                            }
                            thread_cpu_ns() - start
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).sum()
            });
            on_cpu as f64 / (threads * per_thread) as f64
        };
        let (written, dropped) = settle(&auditor);
        let emit = run(true);
        let (written_after, dropped_after) = settle(&auditor);
        let build = run(false);
        println!(
            "emit CPU per event, {threads} threads: {emit:.0} ns (event built and dropped without the queue: {build:.0} ns; queue's share {:.0} ns); {} written, {} dropped (queue full)",
            emit - build,
            written_after - written,
            dropped_after - dropped
        );
    }

    // Writer throughput: N events into a JSON-lines file on a single-threaded runtime, into
    // the temporary directory (a disk here) and into tmpfs (`/dev/shm`, when there is one),
    // which leaves out the disk and the page cache's writeback: the writer's own rate. The
    // two alternate for a few rounds; each line is their median.
    let mut targets = vec![("json-lines file writer", std::env::temp_dir())];
    let shm = std::path::PathBuf::from("/dev/shm");
    if shm.is_dir() {
        targets.push(("json-lines file writer, tmpfs", shm));
    }
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); targets.len()];
    for _ in 0..5 {
        for ((_, parent), rates) in targets.iter().zip(&mut rates) {
            rates.push(writer_throughput(parent, 200_000));
        }
    }
    for ((label, parent), mut rates) in targets.into_iter().zip(rates) {
        rates.sort_by(f64::total_cmp);
        println!(
            "{label}: 200000 events, median {:.0} events/s on one core (5 rounds: {}; in {})",
            rates[rates.len() / 2],
            rates
                .iter()
                .map(|r| format!("{r:.0}"))
                .collect::<Vec<_>>()
                .join(", "),
            parent.display()
        );
    }
}

/// Events per second that one writer drains from a full queue into a new JSON-lines file
/// under `parent`, on a single-threaded runtime.
fn writer_throughput(parent: &std::path::Path, n: usize) -> f64 {
    let single = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::Builder::new()
        .prefix("oauth-audit-bench-")
        .tempdir_in(parent)
        .unwrap();
    let elapsed = single.block_on(async {
        let auditor = Auditor::builder()
            .queue_capacity(n)
            .writer(
                JsonLines::file(dir.path().join("audit.jsonl"))
                    .await
                    .unwrap(),
            )
            .build()
            .unwrap();
        for _ in 0..n {
            auditor.emit(event());
        }
        let start = Instant::now();
        auditor.shutdown().await;
        start.elapsed()
    });
    n as f64 / elapsed.as_secs_f64()
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = micro, request_path, pipeline
}
criterion_main!(benches);
