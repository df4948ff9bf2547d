//! A small load client for `bench/grpc.sh`: `ScannerService/GetLast` and
//! `OperationService/Get` over gRPC (tonic, one HTTP/2 connection per worker) next to
//! the same questions over REST (`GET /container-registry/v1/images/{id}:lastScanResult`
//! and `GET /operations/{id}`, one HTTP/1.1 keep-alive connection per worker), at each
//! connection count, in the same run against the same server. Prints p50, p99 and
//! requests per second, and the gRPC/REST ratios; asserts nothing.
//!
//! Usage: grpc_load URL IMAGE_ID OPERATION_ID [SECONDS] [CONNECTIONS...]
//! e.g. `grpc_load http://127.0.0.1:5000 crp… crq… 10 4 16`.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use crscan_api::grpc::proto::yandex::cloud::containerregistry::v1::GetLastScanResultRequest;
use crscan_api::grpc::proto::yandex::cloud::containerregistry::v1::scanner_service_client::ScannerServiceClient;
use crscan_api::grpc::proto::yandex::cloud::operation::GetOperationRequest;
use crscan_api::grpc::proto::yandex::cloud::operation::operation_service_client::OperationServiceClient;

#[derive(Clone, Copy, PartialEq)]
enum Question {
    GetLast,
    OperationGet,
}

impl Question {
    fn name(self) -> &'static str {
        match self {
            Question::GetLast => "GetLast",
            Question::OperationGet => "OperationService/Get",
        }
    }
}

struct Figures {
    p50_ms: f64,
    p99_ms: f64,
    per_second: f64,
}

fn figures(mut latencies: Vec<Duration>, elapsed: Duration) -> Figures {
    latencies.sort();
    let at = |quantile: f64| {
        let index = ((latencies.len() as f64 * quantile).ceil() as usize).saturating_sub(1);
        latencies[index.min(latencies.len() - 1)].as_secs_f64() * 1000.0
    };
    Figures {
        p50_ms: at(0.50),
        p99_ms: at(0.99),
        per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
    }
}

/// One worker over gRPC: its own channel (connection), requests back to back until
/// `deadline`; latencies after `measure_from` are kept.
async fn grpc_worker(
    url: String,
    question: Question,
    id: String,
    measure_from: Instant,
    deadline: Instant,
) -> Vec<Duration> {
    let channel = tonic::transport::Endpoint::from_shared(url)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut scanner = ScannerServiceClient::new(channel.clone());
    let mut operations = OperationServiceClient::new(channel);
    let mut latencies = Vec::new();
    loop {
        let started = Instant::now();
        if started >= deadline {
            return latencies;
        }
        match question {
            Question::GetLast => {
                scanner
                    .get_last(GetLastScanResultRequest {
                        image_id: id.clone(),
                    })
                    .await
                    .unwrap();
            }
            Question::OperationGet => {
                operations
                    .get(GetOperationRequest {
                        operation_id: id.clone(),
                    })
                    .await
                    .unwrap();
            }
        }
        if started >= measure_from {
            latencies.push(started.elapsed());
        }
    }
}

/// One worker over REST: its own HTTP/1.1 keep-alive connection.
async fn rest_worker(
    url: String,
    question: Question,
    id: String,
    measure_from: Instant,
    deadline: Instant,
) -> Vec<Duration> {
    let client = reqwest::Client::builder()
        .http1_only()
        .pool_max_idle_per_host(1)
        .build()
        .unwrap();
    let target = match question {
        Question::GetLast => format!("{url}/container-registry/v1/images/{id}:lastScanResult"),
        Question::OperationGet => format!("{url}/operations/{id}"),
    };
    let mut latencies = Vec::new();
    loop {
        let started = Instant::now();
        if started >= deadline {
            return latencies;
        }
        let response = client.get(&target).send().await.unwrap();
        assert!(
            response.status().is_success(),
            "{target}: {}",
            response.status()
        );
        response.bytes().await.unwrap();
        if started >= measure_from {
            latencies.push(started.elapsed());
        }
    }
}

async fn measure(
    url: &str,
    grpc: bool,
    question: Question,
    id: &str,
    connections: usize,
    seconds: u64,
) -> Figures {
    let warmup = Duration::from_secs(1);
    let start = Instant::now();
    let measure_from = start + warmup;
    let deadline = measure_from + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (url, id) = (url.to_owned(), id.to_owned());
        tasks.push(if grpc {
            tokio::spawn(grpc_worker(url, question, id, measure_from, deadline))
        } else {
            tokio::spawn(rest_worker(url, question, id, measure_from, deadline))
        });
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    figures(latencies, deadline - measure_from)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        eprintln!("usage: grpc_load URL IMAGE_ID OPERATION_ID [SECONDS] [CONNECTIONS...]");
        std::process::exit(2);
    }
    let (url, image_id, operation_id) = (&args[0], &args[1], &args[2]);
    let seconds: u64 = args.get(3).map_or(10, |text| text.parse().unwrap());
    let mut connections: Vec<usize> = args
        .iter()
        .skip(4)
        .map(|text| text.parse().unwrap())
        .collect();
    if connections.is_empty() {
        connections = vec![4, 16];
    }
    println!(
        "{:<22} {:>5}  {:>10} {:>10} {:>9}   {:>10} {:>10} {:>9}   {:>9} {:>9}",
        "question",
        "conns",
        "gRPC p50",
        "gRPC p99",
        "gRPC r/s",
        "REST p50",
        "REST p99",
        "REST r/s",
        "p50 g/r",
        "p99 g/r"
    );
    for question in [Question::GetLast, Question::OperationGet] {
        let id = if question == Question::GetLast {
            image_id
        } else {
            operation_id
        };
        for &count in &connections {
            let grpc = measure(url, true, question, id, count, seconds).await;
            let rest = measure(url, false, question, id, count, seconds).await;
            println!(
                "{:<22} {:>5}  {:>8.2}ms {:>8.2}ms {:>9.0}   {:>8.2}ms {:>8.2}ms {:>9.0}   {:>9.2} {:>9.2}",
                question.name(),
                count,
                grpc.p50_ms,
                grpc.p99_ms,
                grpc.per_second,
                rest.p50_ms,
                rest.p99_ms,
                rest.per_second,
                grpc.p50_ms / rest.p50_ms,
                grpc.p99_ms / rest.p99_ms,
            );
        }
    }
}
