"""moto server for the devstack, with DynamoDB transactions made atomic as in AWS.

Run as `python -c <this file> PORT`. It exits when its standard input closes, so it never
outlives the devstack (even one killed with SIGKILL, which runs no cleanup).

moto applies a transaction item by item and, when an item fails, puts back copies of the
tables taken before it began. Two things would show through, and both broke the event
path: a request served meanwhile could see the cancelled writes (or have its own write
undone by the rollback), and a stream iterator taken earlier would keep reading the
discarded table's shard, cancelled records included, and never see another record.
So DynamoDB and DynamoDB Streams requests run one at a time, and a rollback restores the
state into the live table objects, truncating their stream shard where it was.
"""

import os
import sys
import threading

threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()

from moto.dynamodb.models import DynamoDBBackend  # noqa: E402
from moto.dynamodb.responses import DynamoHandler  # noqa: E402
from moto.dynamodbstreams.responses import DynamoDBStreamsHandler  # noqa: E402
from moto.server import main  # noqa: E402

dynamodb_lock = threading.RLock()


def one_at_a_time(call):
    def locked(self):
        with dynamodb_lock:
            return call(self)

    return locked


def counted(call):
    # One line per DynamoDB request on standard error (moto.err.log): benchmarks count them.
    def count(self):
        print(f"shutter-dynamodb-request {self._get_action()}", file=sys.stderr, flush=True)
        return call(self)

    return count


DynamoHandler.call_action = one_at_a_time(counted(DynamoHandler.call_action))
DynamoDBStreamsHandler.call_action = one_at_a_time(DynamoDBStreamsHandler.call_action)

transact_write_items = DynamoDBBackend.transact_write_items


def atomic_transact_write_items(self, transact_items):
    live = dict(self.tables)
    stream_lengths = {
        name: len(table.stream_shard.items)
        for name, table in live.items()
        if table.stream_shard is not None
    }
    try:
        return transact_write_items(self, transact_items)
    except BaseException:
        for name, table in live.items():
            restored = self.tables.get(name)
            if restored is None or restored is table:
                continue
            shard = table.stream_shard
            table.__dict__.update(restored.__dict__)
            if shard is not None:
                del shard.items[stream_lengths[name]:]
                table.stream_shard = shard
            self.tables[name] = table
        raise


DynamoDBBackend.transact_write_items = atomic_transact_write_items

main(["-H", "127.0.0.1", "-p", sys.argv[1]])
