"""moto server for the devstack, with DynamoDB transactions made atomic as in AWS.

Run as `python -c <this file> PORT`. It exits when its standard input closes, so it never
outlives the devstack (even one killed with SIGKILL, which runs no cleanup).

moto applies a transaction item by item and, when an item fails, puts back copies of the
tables taken before it began. Two things would show through, and both broke the event
path: a request served meanwhile could see the cancelled writes (or have its own write
undone by the rollback), and a stream iterator taken earlier would keep reading the
discarded table's shard, cancelled records included, and never see another record.
So DynamoDB and DynamoDB Streams requests run one at a time, and a rollback restores the
items the transaction named in the live tables, truncating their stream shard where it
was (and no table is copied: see TablesStayLive).
"""

import os
import sys
import threading

threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()

import copy  # noqa: E402

import moto.dynamodb.models as dynamodb_models  # noqa: E402
from moto.dynamodb.models import DynamoDBBackend  # noqa: E402
from moto.dynamodb.models.table import Table  # noqa: E402
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
        # One write(2) of the whole line: print() writes the text and its newline apart,
        # and werkzeug's access log, written from other threads, could land in between.
        os.write(2, f"shutter-dynamodb-request {self._get_action()}\n".encode())
        return call(self)

    return count


DynamoHandler.call_action = one_at_a_time(counted(DynamoHandler.call_action))
DynamoDBStreamsHandler.call_action = one_at_a_time(DynamoDBStreamsHandler.call_action)

transact_write_items = DynamoDBBackend.transact_write_items


class TablesStayLive:
    """Stands in for the `copy` module inside moto's DynamoDB models during a
    transaction: moto deep-copies every table a transaction touches, once per item, to
    roll back, which costs time in proportion to the table's size (seconds per
    transaction once a table holds a few thousand items). The rollback below restores only
    the items the transaction names, so tables need no copy; anything else is copied as
    before."""

    @staticmethod
    def deepcopy(value, memo=None):
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


def touched_items(backend, transact_items):
    """(table, hash key, range key, a copy of the item as it is) for each item named."""
    touched = []
    for entry in transact_items:
        _, op = next(iter(entry.items()))
        table = backend.tables.get(op.get("TableName"))
        if table is None:
            continue
        if "Item" in op:
            attrs = op["Item"]
            key = {table.hash_key_attr: attrs[table.hash_key_attr]}
            if table.range_key_attr is not None:
                key[table.range_key_attr] = attrs[table.range_key_attr]
        else:
            key = op["Key"]
        hash_key, range_key = backend.get_keys_value(table, key)
        touched.append((table, hash_key, range_key, copy.deepcopy(table.get_item(hash_key, range_key))))
    return touched


def put_back(table, hash_key, range_key, old):
    items = table.items[hash_key] if range_key is not None else table.items
    slot = range_key if range_key is not None else hash_key
    if old is None:
        items.pop(slot, None)
    else:
        items[slot] = old


def atomic_transact_write_items(self, transact_items):
    try:
        touched = touched_items(self, transact_items)
    except Exception:
        # A malformed request: moto's own validation answers it.
        return transact_write_items(self, transact_items)
    streams = {
        id(table): (table, len(table.stream_shard.items))
        for table, _, _, _ in touched
        if table.stream_shard is not None
    }
    dynamodb_models.copy = TablesStayLive
    try:
        return transact_write_items(self, transact_items)
    except BaseException:
        for table, hash_key, range_key, old in reversed(touched):
            put_back(table, hash_key, range_key, old)
            self.tables[table.name] = table
        for table, length in streams.values():
            del table.stream_shard.items[length:]
        raise
    finally:
        dynamodb_models.copy = copy


DynamoDBBackend.transact_write_items = atomic_transact_write_items

main(["-H", "127.0.0.1", "-p", sys.argv[1]])
