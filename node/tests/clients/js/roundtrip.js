// One step of a kafkajs round trip through a cluster, for node/tests/e2e_cluster_clients.rs;
// the same steps and JSON as ../cluster_roundtrip.py (--client ck|kp):
//
//   create   --topic with --partitions and --replication-factor (admin.createTopics)
//            -> {"client", "error"}
//   produce  --count records, record i = key "k{i % --keys}", value "v{i}", keyed (kafkajs's
//            default, Java-compatible partitioner), acks=-1, idempotent
//            -> {"client", "acked", "errors", "error_samples", "batches": {p: sends}, "elapsed_s"}
//            (kafkajs answers a send with one base offset per partition, not per record)
//   consume  subscribe to --topic in --group (from the beginning when the group has no offset),
//            no auto commit: the offsets of every batch are committed once it is processed;
//            stop after --count records and --linger more seconds (--count 0: --linger seconds
//            once the group is joined), read the group's committed offsets back (admin.fetchOffsets)
//            -> {"client", "records": [[p, offset, key, value], ...], "assigned": [p, ...],
//                "committed": {p: offset}, "timed_out", "elapsed_s"}
//
// kafkajs (node_modules next to this file) comes from `bash scripts/test-deps.sh`. Exactly one
// JSON object on stdout, the last line; kafkajs's own log goes to stderr.

'use strict'

process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1'
const { Kafka, logLevel } = require('kafkajs')
const kafkajsVersion = require('kafkajs/package.json').version

function parseArgs(argv) {
  const a = { partitions: 3, replicationFactor: 3, count: 0, keys: 100, linger: 1.0, timeout: 90.0 }
  const names = {
    '--step': 'step', '--bootstrap': 'bootstrap', '--topic': 'topic', '--partitions': 'partitions',
    '--replication-factor': 'replicationFactor', '--count': 'count', '--keys': 'keys', '--group': 'group',
    '--linger': 'linger', '--timeout': 'timeout',
  }
  for (let i = 2; i < argv.length; i += 2) {
    const name = names[argv[i]]
    if (!name || i + 1 >= argv.length) throw new Error(`bad argument ${argv[i]}`)
    a[name] = typeof a[name] === 'number' ? Number(argv[i + 1]) : argv[i + 1]
  }
  for (const required of ['step', 'bootstrap', 'topic']) {
    if (!a[required]) throw new Error(`--${required} is required`)
  }
  return a
}

const log = (...args) => console.error(...args)
const emit = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const client = `kafkajs ${kafkajsVersion}`

// kafkajs logs to the console's stdout by default: to stderr instead, warnings and up.
const logCreator = () => ({ namespace, level, log: entry }) => {
  const { message, ...extra } = entry
  log(`kafkajs ${logLevel[level] || level} ${namespace}: ${message} ${JSON.stringify(extra)}`)
}

function kafka(a) {
  return new Kafka({
    clientId: 'sluice-e2e',
    brokers: a.bootstrap.split(','),
    logLevel: logLevel.WARN,
    logCreator,
    retry: { retries: 10 },
  })
}

async function create(a) {
  const admin = kafka(a).admin()
  await admin.connect()
  try {
    const created = await admin.createTopics({
      topics: [{ topic: a.topic, numPartitions: a.partitions, replicationFactor: a.replicationFactor }],
      waitForLeaders: true,
      timeout: 30000,
    })
    return { client, error: created ? null : 'createTopics answered false: the topic exists' }
  } catch (e) {
    return { client, error: `${e.name}: ${e.message}` }
  } finally {
    await admin.disconnect()
  }
}

async function produce(a) {
  const producer = kafka(a).producer({ idempotent: true, maxInFlightRequests: 1 })
  await producer.connect()
  let acked = 0
  let errors = 0
  const samples = []
  const batches = {}
  // Batches of 500 records, one send each (kafkajs sends a batch per partition leader).
  for (let start = 0; start < a.count; start += 500) {
    const messages = []
    for (let i = start; i < Math.min(a.count, start + 500); i++) {
      messages.push({ key: `k${i % a.keys}`, value: `v${i}` })
    }
    try {
      const results = await producer.send({ topic: a.topic, acks: -1, timeout: 30000, messages })
      for (const r of results) {
        if (r.errorCode !== 0) {
          errors += 1
          if (samples.length < 10) samples.push(`partition ${r.partition}: error ${r.errorCode}`)
        }
      }
      acked += messages.length
      for (const r of results) batches[String(r.partition)] = (batches[String(r.partition)] || 0) + 1
    } catch (e) {
      errors += messages.length
      if (samples.length < 10) samples.push(`${e.name}: ${e.message}`)
    }
  }
  await producer.disconnect()
  return { client, acked, errors, error_samples: samples, batches }
}

async function consume(a) {
  if (!a.group) throw new Error('--group is required')
  const k = kafka(a)
  const consumer = k.consumer({ groupId: a.group, sessionTimeout: 6000, heartbeatInterval: 500 })
  const records = []
  let assigned = []
  let joined = false
  consumer.on(consumer.events.GROUP_JOIN, (e) => {
    joined = true
    assigned = (e.payload.memberAssignment[a.topic] || []).slice().sort((x, y) => x - y)
    log('assigned', assigned)
  })
  let failed = null
  consumer.on(consumer.events.CRASH, (e) => {
    failed = e.payload.error
  })
  await consumer.connect()
  await consumer.subscribe({ topics: [a.topic], fromBeginning: true })
  await consumer.run({
    autoCommit: false,
    eachBatch: async ({ batch, heartbeat }) => {
      for (const m of batch.messages) {
        records.push([batch.partition, Number(m.offset), m.key && m.key.toString(), m.value && m.value.toString()])
      }
      if (batch.messages.length > 0) {
        const next = (BigInt(batch.lastOffset()) + 1n).toString()
        await consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: next }])
      }
      await heartbeat()
    },
  })
  const t0 = Date.now()
  let lingerEnd = null
  let timedOut = false
  for (;;) {
    if (failed) throw failed
    const now = Date.now()
    if (now >= t0 + a.timeout * 1000) {
      timedOut = true
      break
    }
    if (lingerEnd === null && joined && records.length >= a.count) lingerEnd = now + a.linger * 1000
    if (lingerEnd !== null && now >= lingerEnd) break
    await sleep(50)
  }
  await consumer.disconnect()
  const admin = k.admin()
  await admin.connect()
  const committed = {}
  for (const t of await admin.fetchOffsets({ groupId: a.group, topics: [a.topic] })) {
    for (const p of t.partitions) committed[String(p.partition)] = Number(p.offset)
  }
  await admin.disconnect()
  return { client, records, assigned, committed, timed_out: timedOut }
}

async function main() {
  const a = parseArgs(process.argv)
  const t0 = Date.now()
  const steps = { create, produce, consume }
  if (!steps[a.step]) throw new Error(`unknown --step ${a.step}`)
  const out = await steps[a.step](a)
  out.elapsed_s = (Date.now() - t0) / 1000
  emit(out)
}

main().then(
  () => process.exit(0),
  (e) => {
    log('roundtrip.js failed:', e)
    process.exit(1)
  },
)
