"""Settings for the test suite: same engines, separate Redis database, fast retries."""

import os

from config.settings import *  # noqa: F403
from config.settings import FAKE_THIRD_PARTIES

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
CELERY_BROKER_URL = REDIS_URL
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
MESSAGING_RETRY_BASE_S = 0.05
MESSAGING_RETRY_MAX_S = 0.5
MESSAGING_MAX_RETRIES = 3
FAKE_THIRD_PARTIES = {name: {**profile, "latency_ms": 0.0} for name, profile in FAKE_THIRD_PARTIES.items()}
INSTALLED_APPS = [*INSTALLED_APPS, "tests.probe"]  # noqa: F405
# Tests leave messages in the saga queues of their Redis database (no worker drains
# them): admission control must not refuse their orders. Its own tests set small thresholds.
ADMISSION_ORDER_LAG_S = 3600.0
ADMISSION_READ_LAG_S = 3600.0
