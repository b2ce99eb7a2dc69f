//! A bucket and its notifications to a queue.

use super::CreateError;
use crate::stack::clients::{AwsError, AwsResult, LocalClients};
use crate::template::model::BucketProperties;

pub(super) async fn create_bucket(
    clients: &LocalClients,
    name: &str,
    props: &BucketProperties,
) -> Result<(), CreateError> {
    use aws_sdk_s3::types::{
        Event, FilterRule, FilterRuleName, NotificationConfiguration,
        NotificationConfigurationFilter, QueueConfiguration, S3KeyFilter,
    };
    match clients.s3.create_bucket().bucket(name).send().await {
        Err(e)
            if !e
                .as_service_error()
                .is_some_and(|s| s.is_bucket_already_owned_by_you()) =>
        {
            return Err(AwsError::new(format!("CreateBucket {name}"), e).into());
        }
        _ => {}
    }
    let configs = &props.notification_configuration.queue_configurations;
    if configs.is_empty() {
        return Ok(());
    }
    // Writing the configuration makes S3 send another s3:TestEvent: only on first creation.
    // (moto answers an empty configuration with a root element the SDK cannot parse: that
    // error means "none configured yet".)
    let configured = clients
        .s3
        .get_bucket_notification_configuration()
        .bucket(name)
        .send()
        .await;
    if configured.is_ok_and(|c| !c.queue_configurations().is_empty()) {
        return Ok(());
    }
    let mut notification = NotificationConfiguration::builder();
    for config in configs {
        let rules: Vec<FilterRule> = config
            .filter
            .iter()
            .flat_map(|f| &f.s3_key.rules)
            .map(|rule| {
                FilterRule::builder()
                    .name(FilterRuleName::from(rule.name.to_lowercase().as_str()))
                    .value(&rule.value)
                    .build()
            })
            .collect();
        let mut queue = QueueConfiguration::builder()
            .queue_arn(&config.queue)
            .events(Event::from(config.event.as_str()));
        if !rules.is_empty() {
            queue = queue.filter(
                NotificationConfigurationFilter::builder()
                    .key(S3KeyFilter::builder().set_filter_rules(Some(rules)).build())
                    .build(),
            );
        }
        let queue = queue
            .build()
            .map_err(|e| CreateError::Invalid(format!("bucket {name}: {e}")))?;
        notification = notification.queue_configurations(queue);
    }
    clients
        .s3
        .put_bucket_notification_configuration()
        .bucket(name)
        .notification_configuration(notification.build())
        .send()
        .await
        .aws(|| format!("PutBucketNotificationConfiguration {name}"))?;
    Ok(())
}
