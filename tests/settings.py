"""Settings for the test run: the embedded stack in a throw-away data dir, fast hashing."""

import os
import tempfile

# The default tier always runs embedded, whatever the developer's shell exports; the
# integration tier starts its own processes against BOSUN_TEST_DATABASE_URL/REDIS_URL.
for _name in ("DATABASE_URL", "REDIS_URL", "BOSUN_SECRET_KEY", "BOSUN_MASTER_KEY_FILE"):
    os.environ.pop(_name, None)
os.environ["BOSUN_DATA_DIR"] = tempfile.mkdtemp(prefix="bosun-test-")

from bosun.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
STATIC_ROOT.mkdir(exist_ok=True)  # noqa: F405 - whitenoise warns when it is missing
