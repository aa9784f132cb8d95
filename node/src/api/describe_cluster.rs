//! DescribeCluster, versions 0–2: the cluster's brokers and its controller (this node alone,
//! or the quorum's view: `Shard::cluster_answer`); asked for
//! authorized operations, every cluster operation (no authorizer; see `authorized_operations`).

use super::{authorized_operations, decode, Close};
use crate::protocol::{encode_response, Request, Response};
use crate::shard::Shard;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (0, 2);

pub async fn handle(shard: &Rc<Shard>, req: &Request) -> Result<Response, Close> {
    let request: DescribeClusterRequest = decode(req)?;
    let cluster = shard.cluster_answer();
    let brokers: Vec<_> = cluster
        .brokers
        .into_iter()
        .map(|(id, host, port)| {
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(id))
                .with_host(StrBytes::from_string(host))
                .with_port(port)
        })
        .collect();
    let mut body = DescribeClusterResponse::default()
        .with_cluster_id(StrBytes::from_string(cluster.cluster_id))
        .with_controller_id(BrokerId(cluster.controller_id))
        .with_brokers(brokers)
        .with_cluster_authorized_operations(authorized_operations::when(
            request.include_cluster_authorized_operations,
            authorized_operations::CLUSTER,
        ));
    if req.api_version >= 1 {
        body = body.with_endpoint_type(request.endpoint_type.max(1));
    }
    Ok(encode_response(req.api_key, req.api_version, req.header.correlation_id, &body))
}
