"""What a broker does of what the bridge needs: consumer groups, offset commits, the latest
offset (ListOffsets), transactions. Prints one line per check.

    target/peers/venv/bin/python scripts/bench/broker_probe.py HOST:PORT
"""

import sys
import time
import uuid

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

brokers = sys.argv[1]
topic = f"probe-{uuid.uuid4().hex[:8]}"
admin = AdminClient({"bootstrap.servers": brokers})
for future in admin.create_topics([NewTopic(topic, 3, 1)]).values():
    future.result()
time.sleep(1)

producer = Producer({"bootstrap.servers": brokers, "enable.idempotence": True})
for i in range(300):
    producer.produce(topic, value=str(i).encode(), partition=i % 3)
producer.flush(30)
print("produced: 100 messages to each of 3 partitions")

consumer = Consumer({"bootstrap.servers": brokers, "group.id": f"g-{topic}",
                     "enable.auto.commit": False, "auto.offset.reset": "earliest"})
for p in range(3):
    low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
    print(f"ListOffsets partition {p}: low {low}, high {high} (expected 0, 100)")

consumer.subscribe([topic])
read, deadline = 0, time.time() + 30
while read < 300 and time.time() < deadline:
    m = consumer.poll(1)
    if m is not None and not m.error():
        read += 1
print(f"consumer group: joined, assignment {[tp.partition for tp in consumer.assignment()]}, read {read}")
consumer.commit(offsets=[TopicPartition(topic, p, 100) for p in range(3)], asynchronous=False)
committed = consumer.committed([TopicPartition(topic, p) for p in range(3)], timeout=10)
print(f"offset commit: committed {[tp.offset for tp in committed]} (expected [100, 100, 100])")

tx = Producer({"bootstrap.servers": brokers, "transactional.id": f"probe-{topic}"})
try:
    tx.init_transactions(10)
    print("transactions: InitProducerId ok")
    tx.begin_transaction()
    tx.produce(topic, value=b"in a transaction", partition=0)
    tx.send_offsets_to_transaction([TopicPartition(topic, 0, 100)],
                                   consumer.consumer_group_metadata(), 10)
    print("transactions: AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit ok")
    tx.commit_transaction(10)
    print("transactions: EndTxn ok")
except KafkaException as e:
    print(f"transactions: failed: {e.args[0]}")
consumer.close()
