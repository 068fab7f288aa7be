//! `dlq-replay`: an operator's command that sends again what reached a dead-letter queue
//! (see `shutter_outbox::replay`, and docs/deploy.md for how to run it).
// rskafka's nested futures need a deeper query limit than the default 128.
#![recursion_limit = "256"]

use std::process::ExitCode;

use shutter_outbox::replay::{self, Options, USAGE};
use shutter_outbox::store::DynamoOutbox;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut options = match Options::parse(&args, std::env::var("EVENTS_DLQ_URL").ok()) {
        Ok(options) => options,
        Err(why) if why.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(why) => {
            eprintln!("{why}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    shutter_store::init_tracing();
    let aws = shutter_store::aws_config().await;
    let kafka = match shutter_outbox::kafka(&aws).await {
        Ok(kafka) => kafka,
        Err(e) => {
            eprintln!("cannot reach Kafka: {e}");
            return ExitCode::from(2);
        }
    };
    let sqs = shutter_store::SdkClient::new(&aws, aws_sdk_sqs::Client::new);
    // A queue's name (EventsDlq locally) stands for its URL.
    if !options.queue_url.contains("://") {
        match sqs
            .get()
            .get_queue_url()
            .queue_name(&options.queue_url)
            .send()
            .await
        {
            Ok(found) => options.queue_url = found.queue_url.unwrap_or_default(),
            Err(e) => {
                eprintln!(
                    "no queue named {}: {}",
                    options.queue_url,
                    aws_sdk_sqs::error::DisplayErrorContext(e)
                );
                return ExitCode::from(2);
            }
        }
    }
    // Outbox items that can never be published (found while settling a stream batch) go
    // back to the same queue, with their text.
    let dlq = shutter_events::SqsPoisonQueue {
        client: sqs.clone(),
        queue_url: options.queue_url.clone(),
        source: "dlq-replay",
    };
    match replay::run(sqs.get(), &kafka, &DynamoOutbox::new(&aws), &dlq, &options).await {
        Ok(summary) if summary.kept == 0 => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}
