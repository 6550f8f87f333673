"""The job of jobs.py on a task queue: an RQ worker runs it, Redis
holds its progress, and the Flask stream reads the progress from Redis.

jobs.py uses this module when REDIS_URL is set::

    redis-server
    REDIS_URL=redis://127.0.0.1:6379/0 flask --app snippets.jobs run
    rq worker --url redis://127.0.0.1:6379/0
"""

import json

from redis import Redis
from rq import Queue, get_current_job

EXPIRE_SECONDS = 24 * 60 * 60  # Redis forgets a job a day after its last event


# [redis-store]
class RedisJobs:
    """Events in one Redis list per job: event n is item n - 1."""

    def __init__(self, redis, work=None):
        self.redis = redis
        self.work = work  # run_job(store, job_id, steps, fail_at)

    @classmethod
    def from_url(cls, url, work=None):
        return cls(Redis.from_url(url), work)

    def add(self, job_id, **event):
        key = f"job:{job_id}:events"
        with self.redis.pipeline() as pipe:  # MULTI/EXEC: both or neither
            pipe.rpush(key, json.dumps(event)).expire(key, EXPIRE_SECONDS).execute()

    def events(self, job_id, after=0):
        items = self.redis.lrange(f"job:{job_id}:events", after, -1)
        return [(n, item.decode()) for n, item in enumerate(items, start=after + 1)]

    def start(self, job_id, steps, fail_at):
        """Queue the job; the workers you run are the limit."""
        self.add(job_id, state="queued", done=0, total=steps)
        # What goes to Redis is each function's dotted name and the arguments.
        queue = Queue(connection=self.redis)
        queue.enqueue(queued_job, self.work, job_id, steps, fail_at, job_id=job_id)
        return True


def queued_job(work, job_id, steps, fail_at):
    """What the worker runs: the same work, writing to the worker's Redis."""
    work(RedisJobs(get_current_job().connection), job_id, steps, fail_at)


# [redis-store-end]
