/* aimass-patch */
// Replaces kafkajs 2.2.4's src/producer/sendMessages.js (installed by patches/kafkajs.mjs).
// The original loses and duplicates records of a transactional send across several brokers:
//
// - It sent one request per leader with Promise.all, so the first failure started the retry
//   while other brokers' requests were still in flight. The retry re-sent those brokers'
//   partitions with the next sequence numbers once the first request had been appended: the
//   same records twice in one transaction.
// - It remembered success per broker, not per partition. A partition whose leader moved to a
//   broker that had already answered was never sent, and the send resolved: records lost.
// - It grouped messages per partition again on every attempt. A message without a key gets a
//   partition round-robin, so a retry could put another message under a sequence number the
//   leader had already appended, and the leader drops it as a duplicate.
// - findLeaderForPartitions skips a partition the metadata does not list; nothing was sent to
//   it and the send resolved.
//
// Here messages are grouped once per send, success is kept per partition, an attempt waits for
// every one of its requests to settle before it fails, and an attempt that cannot reach every
// pending partition fails (retriably, after a metadata refresh) instead of resolving.
// Everything else (locks, AddPartitionsToTxn, sequence bookkeeping, the error handling of the
// retry) is kafkajs' own.
const { KafkaJSMetadataNotLoaded } = require('../errors')
const { staleMetadata } = require('../protocol/error')
const groupMessagesPerPartition = require('./groupMessagesPerPartition')
const responseSerializer = require('./responseSerializer')

const { keys } = Object

module.exports = ({ logger, cluster, partitioner, eosManager, retrier }) => {
  return async ({ acks, timeout, compression, topicMessages }) => {
    /** topic → { [partition]: messages }, fixed at the first attempt that has the metadata. */
    const grouped = new Map()
    /** `${topic}\0${partition}` → that partition's entries of the produce response. */
    const answered = new Map()
    const done = (topic, partition) => answered.has(`${topic}\0${partition}`)

    const groupOnce = () => {
      for (const { topic, messages } of topicMessages) {
        if (grouped.has(topic)) continue
        const partitionMetadata = cluster.findTopicPartitionMetadata(topic)
        if (partitionMetadata.length === 0) {
          logger.debug('Producing to topic without metadata', {
            topic,
            targetTopics: Array.from(cluster.targetTopics),
          })
          throw new KafkaJSMetadataNotLoaded('Producing to topic without metadata')
        }
        grouped.set(
          topic,
          groupMessagesPerPartition({ topic, partitionMetadata, messages, partitioner })
        )
      }
    }

    /** The pending partitions per leader broker: Map<broker, Array<{ topic, partitions }>>. */
    const pendingPerBroker = async () => {
      const perBroker = new Map()
      for (const [topic, messagesPerPartition] of grouped) {
        const pending = keys(messagesPerPartition).filter(p => !done(topic, p))
        if (pending.length === 0) continue
        const perLeader = cluster.findLeaderForPartitions(topic, pending)
        const covered = keys(perLeader).reduce((n, id) => n + perLeader[id].length, 0)
        if (covered !== pending.length) {
          throw new KafkaJSMetadataNotLoaded('Producing to a partition without metadata')
        }
        for (const nodeId of keys(perLeader)) {
          const broker = await cluster.findBroker({ nodeId })
          if (!perBroker.has(broker)) perBroker.set(broker, [])
          perBroker.get(broker).push({
            topic,
            partitions: perLeader[nodeId].map(partition => ({
              partition,
              messages: messagesPerPartition[partition],
            })),
          })
        }
      }
      return perBroker
    }

    const produce = async (broker, topicData) => {
      await eosManager.acquireBrokerLock(broker)
      try {
        if (eosManager.isTransactional()) {
          await eosManager.addPartitionsToTransaction(topicData)
        }

        topicData.forEach(({ topic, partitions }) => {
          partitions.forEach(entry => {
            entry['firstSequence'] = eosManager.getSequence(topic, entry.partition)
            eosManager.updateSequence(topic, entry.partition, entry.messages.length)
          })
        })

        let response
        try {
          response = await broker.produce({
            transactionalId: eosManager.isTransactional()
              ? eosManager.getTransactionalId()
              : undefined,
            producerId: eosManager.getProducerId(),
            producerEpoch: eosManager.getProducerEpoch(),
            acks,
            timeout,
            compression,
            topicData,
          })
        } catch (e) {
          // The same messages go again under the same sequence numbers, so a leader that
          // appended them answers "duplicate" rather than appending them twice.
          topicData.forEach(({ topic, partitions }) => {
            partitions.forEach(entry => {
              eosManager.updateSequence(topic, entry.partition, -entry.messages.length)
            })
          })
          throw e
        }

        const entries = acks !== 0 ? responseSerializer(response) : []
        topicData.forEach(({ topic, partitions }) => {
          partitions.forEach(({ partition }) => {
            answered.set(
              `${topic}\0${partition}`,
              entries.filter(e => e.topicName === topic && e.partition === partition)
            )
          })
        })
      } finally {
        await eosManager.releaseBrokerLock(broker)
      }
    }

    return retrier(async (bail, retryCount, retryTime) => {
      const topics = topicMessages.map(({ topic }) => topic)
      await cluster.addMultipleTargetTopics(topics)

      try {
        await cluster.refreshMetadataIfNecessary()
        groupOnce()
        const perBroker = await pendingPerBroker()
        const settled = await Promise.allSettled(
          Array.from(perBroker, ([broker, topicData]) => produce(broker, topicData))
        )
        const failed = settled.find(s => s.status === 'rejected')
        if (failed) throw failed.reason
        return Array.from(answered.values()).flat()
      } catch (e) {
        if (e.name === 'KafkaJSConnectionClosedError') {
          cluster.removeBroker({ host: e.host, port: e.port })
        }

        if (!cluster.isConnected()) {
          logger.debug(`Cluster has disconnected, reconnecting: ${e.message}`, {
            retryCount,
            retryTime,
          })
          await cluster.connect()
          await cluster.refreshMetadata()
          throw e
        }

        if (
          staleMetadata(e) ||
          e.name === 'KafkaJSMetadataNotLoaded' ||
          e.name === 'KafkaJSConnectionError' ||
          e.name === 'KafkaJSConnectionClosedError' ||
          (e.name === 'KafkaJSProtocolError' && e.retriable)
        ) {
          logger.error(`Failed to send messages: ${e.message}`, { retryCount, retryTime })
          await cluster.refreshMetadata()
          throw e
        }

        logger.error(`${e.message}`, { retryCount, retryTime })
        if (e.retriable) throw e
        bail(e)
      }
    })
  }
}
