//! A table: keys, indexes, stream and TTL as the template declares them.

use super::CreateError;
use crate::stack::clients::{AwsError, AwsResult, LocalClients};
use crate::template::model::TableProperties;

/// An ARN, as a resource answers `GetAtt Arn`.
type Arn = String;

pub(super) async fn create_table(
    clients: &LocalClients,
    name: &str,
    props: &TableProperties,
) -> Result<Option<Arn>, CreateError> {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
        LocalSecondaryIndex, Projection, ProjectionType, ProvisionedThroughput,
        ScalarAttributeType, TimeToLiveSpecification,
    };
    let invalid =
        |e: aws_sdk_dynamodb::error::BuildError| CreateError::Invalid(format!("table {name}: {e}"));
    let key_schema = |elements: &[crate::template::model::KeyElement]| -> Result<Vec<KeySchemaElement>, CreateError> {
        elements
            .iter()
            .map(|k| {
                KeySchemaElement::builder()
                    .attribute_name(&k.attribute_name)
                    .key_type(KeyType::from(k.key_type.as_str()))
                    .build()
                    .map_err(invalid)
            })
            .collect()
    };
    let projection = |p: &crate::template::model::Projection| {
        Projection::builder()
            .projection_type(ProjectionType::from(p.projection_type.as_str()))
            .set_non_key_attributes(
                (!p.non_key_attributes.is_empty()).then(|| p.non_key_attributes.clone()),
            )
            .build()
    };
    let on_demand = props.billing_mode == "PAY_PER_REQUEST";
    // Local capacity is not metered: any provisioned figure will do.
    let throughput = ProvisionedThroughput::builder()
        .read_capacity_units(5)
        .write_capacity_units(5)
        .build()
        .map_err(invalid)?;
    let mut request = clients
        .dynamodb
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::from(props.billing_mode.as_str()))
        .set_key_schema(Some(key_schema(&props.key_schema)?));
    for definition in &props.attribute_definitions {
        request = request.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(&definition.attribute_name)
                .attribute_type(ScalarAttributeType::from(
                    definition.attribute_type.as_str(),
                ))
                .build()
                .map_err(invalid)?,
        );
    }
    for index in &props.local_secondary_indexes {
        request = request.local_secondary_indexes(
            LocalSecondaryIndex::builder()
                .index_name(&index.index_name)
                .set_key_schema(Some(key_schema(&index.key_schema)?))
                .projection(projection(&index.projection))
                .build()
                .map_err(invalid)?,
        );
    }
    for index in &props.global_secondary_indexes {
        let mut built = GlobalSecondaryIndex::builder()
            .index_name(&index.index_name)
            .set_key_schema(Some(key_schema(&index.key_schema)?))
            .projection(projection(&index.projection));
        if !on_demand {
            built = built.provisioned_throughput(throughput.clone());
        }
        request = request.global_secondary_indexes(built.build().map_err(invalid)?);
    }
    if !on_demand {
        request = request.provisioned_throughput(throughput);
    }
    if let Some(stream) = &props.stream_specification {
        request = request.stream_specification(
            aws_sdk_dynamodb::types::StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(aws_sdk_dynamodb::types::StreamViewType::from(
                    stream.stream_view_type.as_str(),
                ))
                .build()
                .map_err(invalid)?,
        );
    }
    let existed = match request.send().await {
        Ok(_) => false,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_in_use_exception()) =>
        {
            true
        }
        Err(e) => return Err(AwsError::new(format!("CreateTable {name}"), e).into()),
    };
    let stream_arn = if props.stream_specification.is_some() {
        clients
            .dynamodb
            .describe_table()
            .table_name(name)
            .send()
            .await
            .aws(|| format!("DescribeTable {name}"))?
            .table
            .and_then(|t| t.latest_stream_arn)
    } else {
        None
    };
    if existed {
        return Ok(stream_arn);
    }
    if let Some(ttl) = props
        .time_to_live_specification
        .as_ref()
        .filter(|t| t.enabled)
    {
        let spec = TimeToLiveSpecification::builder()
            .attribute_name(&ttl.attribute_name)
            .enabled(true)
            .build()
            .map_err(invalid)?;
        clients
            .dynamodb
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(spec)
            .send()
            .await
            .aws(|| format!("UpdateTimeToLive {name}"))?;
    }
    Ok(stream_arn)
}
