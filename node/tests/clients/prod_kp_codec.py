"""Can kafka-python (de)compress CODEC in this venv? (for node/tests/e2e_producer.rs)

kafka-python needs optional pip packages for snappy (python-snappy), lz4 (lz4) and zstd
(zstandard). Output: {"codec", "ok", "missing_package": name or null, "kafka_python"}.
"""

import sys

import kafka

from common import emit
from prod_produce import kp_codec_missing


def main():
    codec = sys.argv[1]
    missing = kp_codec_missing(codec)
    emit({"codec": codec, "ok": missing is None, "missing_package": missing,
          "kafka_python": kafka.__version__})


if __name__ == "__main__":
    main()
