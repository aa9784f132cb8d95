//! Kafka error codes: the node's one table, named as Kafka names them (Errors.java) and
//! taken from `kafka_protocol::ResponseError`, so a number cannot drift from its name.
//! Responses carry the `i16`; nothing else in the node writes an error code as a literal.

use kafka_protocol::ResponseError as E;

/// Kafka's answer to an unexpected failure; Kafka 3.9 gives it to ListOffsets v0 with a
/// negative MaxNumOffsets, and so do we.
pub const UNKNOWN_SERVER_ERROR: i16 = E::UnknownServerError.code();
pub const NONE: i16 = 0;
pub const OFFSET_OUT_OF_RANGE: i16 = E::OffsetOutOfRange.code();
pub const CORRUPT_MESSAGE: i16 = E::CorruptMessage.code();
pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = E::UnknownTopicOrPartition.code();
/// Retriable: the partition is moving between shards (or just moved); ask again.
pub const NOT_LEADER_OR_FOLLOWER: i16 = E::NotLeaderOrFollower.code();
pub const REQUEST_TIMED_OUT: i16 = E::RequestTimedOut.code();
pub const LEADER_NOT_AVAILABLE: i16 = E::LeaderNotAvailable.code();
pub const NOT_ENOUGH_REPLICAS: i16 = E::NotEnoughReplicas.code();
/// acks=all: the records were appended and committed, but the in-sync replicas fell below
/// `min.insync.replicas` meanwhile (retriable; a retry may duplicate them unless idempotent).
pub const NOT_ENOUGH_REPLICAS_AFTER_APPEND: i16 = E::NotEnoughReplicasAfterAppend.code();
/// ElectLeaders: the preferred replica is not live or not in sync.
pub const PREFERRED_LEADER_NOT_AVAILABLE: i16 = E::PreferredLeaderNotAvailable.code();
/// ElectLeaders (unclean): no live replica to elect.
pub const ELIGIBLE_LEADERS_NOT_AVAILABLE: i16 = E::EligibleLeadersNotAvailable.code();
/// ElectLeaders: the partition already has the leader asked for.
pub const ELECTION_NOT_NEEDED: i16 = E::ElectionNotNeeded.code();
/// AlterPartitionReassignments: a cancellation for a partition that is not being moved.
pub const NO_REASSIGNMENT_IN_PROGRESS: i16 = E::NoReassignmentInProgress.code();
/// Retriable: the leader epoch a client sent is older than this leader's (its metadata is
/// stale); it refreshes metadata and asks again.
pub const FENCED_LEADER_EPOCH: i16 = E::FencedLeaderEpoch.code();
/// Retriable: the leader epoch a client sent is newer than this broker knows (this broker
/// has not heard of the election yet, or was cut off from the quorum).
pub const UNKNOWN_LEADER_EPOCH: i16 = E::UnknownLeaderEpoch.code();
pub const MESSAGE_TOO_LARGE: i16 = E::MessageTooLarge.code();
pub const OFFSET_METADATA_TOO_LARGE: i16 = E::OffsetMetadataTooLarge.code();
pub const COORDINATOR_LOAD_IN_PROGRESS: i16 = E::CoordinatorLoadInProgress.code();
pub const COORDINATOR_NOT_AVAILABLE: i16 = E::CoordinatorNotAvailable.code();
/// Retriable: this shard does not coordinate that group or transactional id (its internal
/// partition is elsewhere or moving); FindCoordinator and ask again.
pub const NOT_COORDINATOR: i16 = E::NotCoordinator.code();
pub const INVALID_TOPIC_EXCEPTION: i16 = E::InvalidTopicException.code();
pub const INVALID_REQUIRED_ACKS: i16 = E::InvalidRequiredAcks.code();
pub const ILLEGAL_GENERATION: i16 = E::IllegalGeneration.code();
pub const INCONSISTENT_GROUP_PROTOCOL: i16 = E::InconsistentGroupProtocol.code();
pub const INVALID_GROUP_ID: i16 = E::InvalidGroupId.code();
pub const UNKNOWN_MEMBER_ID: i16 = E::UnknownMemberId.code();
pub const INVALID_SESSION_TIMEOUT: i16 = E::InvalidSessionTimeout.code();
pub const REBALANCE_IN_PROGRESS: i16 = E::RebalanceInProgress.code();
pub const UNSUPPORTED_VERSION: i16 = E::UnsupportedVersion.code();
pub const TOPIC_ALREADY_EXISTS: i16 = E::TopicAlreadyExists.code();
pub const INVALID_PARTITIONS: i16 = E::InvalidPartitions.code();
pub const INVALID_REPLICATION_FACTOR: i16 = E::InvalidReplicationFactor.code();
pub const INVALID_REPLICA_ASSIGNMENT: i16 = E::InvalidReplicaAssignment.code();
pub const INVALID_CONFIG: i16 = E::InvalidConfig.code();
pub const INVALID_REQUEST: i16 = E::InvalidRequest.code();
pub const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = E::OutOfOrderSequenceNumber.code();
pub const INVALID_PRODUCER_EPOCH: i16 = E::InvalidProducerEpoch.code();
pub const INVALID_TXN_STATE: i16 = E::InvalidTxnState.code();
pub const INVALID_PRODUCER_ID_MAPPING: i16 = E::InvalidProducerIdMapping.code();
pub const INVALID_TRANSACTION_TIMEOUT: i16 = E::InvalidTransactionTimeout.code();
pub const CONCURRENT_TRANSACTIONS: i16 = E::ConcurrentTransactions.code();
pub const OPERATION_NOT_ATTEMPTED: i16 = E::OperationNotAttempted.code();
pub const KAFKA_STORAGE_ERROR: i16 = E::KafkaStorageError.code();
pub const UNKNOWN_PRODUCER_ID: i16 = E::UnknownProducerId.code();
pub const NON_EMPTY_GROUP: i16 = E::NonEmptyGroup.code();
pub const GROUP_ID_NOT_FOUND: i16 = E::GroupIdNotFound.code();
pub const MEMBER_ID_REQUIRED: i16 = E::MemberIdRequired.code();
pub const GROUP_MAX_SIZE_REACHED: i16 = E::GroupMaxSizeReached.code();
pub const FENCED_INSTANCE_ID: i16 = E::FencedInstanceId.code();
pub const GROUP_SUBSCRIBED_TO_TOPIC: i16 = E::GroupSubscribedToTopic.code();
pub const INVALID_RECORD: i16 = E::InvalidRecord.code();
pub const UNSTABLE_OFFSET_COMMIT: i16 = E::UnstableOffsetCommit.code();
pub const PRODUCER_FENCED: i16 = E::ProducerFenced.code();
pub const UNKNOWN_TOPIC_ID: i16 = E::UnknownTopicId.code();
pub const TRANSACTIONAL_ID_NOT_FOUND: i16 = E::TransactionalIdNotFound.code();
pub const FENCED_MEMBER_EPOCH: i16 = E::FencedMemberEpoch.code();
pub const UNRELEASED_INSTANCE_ID: i16 = E::UnreleasedInstanceId.code();
pub const UNSUPPORTED_ASSIGNOR: i16 = E::UnsupportedAssignor.code();
pub const STALE_MEMBER_EPOCH: i16 = E::StaleMemberEpoch.code();
pub const INVALID_REGULAR_EXPRESSION: i16 = E::InvalidRegularExpression.code();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_codes_are_kafkas() {
        // A few against the protocol guide's table, by number.
        let known = [
            (UNKNOWN_SERVER_ERROR, -1),
            (OFFSET_OUT_OF_RANGE, 1),
            (CORRUPT_MESSAGE, 2),
            (NOT_LEADER_OR_FOLLOWER, 6),
            (NOT_COORDINATOR, 16),
            (INVALID_REPLICA_ASSIGNMENT, 39),
            (NO_REASSIGNMENT_IN_PROGRESS, 85),
            (NOT_ENOUGH_REPLICAS_AFTER_APPEND, 20),
            (INVALID_CONFIG, 40),
            (INVALID_REQUEST, 42),
            (KAFKA_STORAGE_ERROR, 56),
            (INVALID_RECORD, 87),
            (PRODUCER_FENCED, 90),
            (TRANSACTIONAL_ID_NOT_FOUND, 105),
        ];
        for (code, want) in known {
            assert_eq!(code, want, "{:?}", E::try_from_code(code));
        }
    }
}
