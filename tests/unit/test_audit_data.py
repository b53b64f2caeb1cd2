"""The audit follows the data: a container's effective configuration (audit/resolve.py),
the servers' config parsers (audit/configs.py) and what each service reads from them."""

from __future__ import annotations

import textwrap

from drillrunner.audit.configs import nats_conf, pg_conf, properties, redis_conf
from drillrunner.audit.loader import parse
from drillrunner.audit.resolve import Container, VolumeKind, resolve
from drillrunner.audit.servers import image_name, server_of

MANIFEST = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg, namespace: ns}
data:
  LOG_LEVEL: debug
  redis.conf: |
    dir /data/redis
    appendonly yes
---
apiVersion: v1
kind: Secret
metadata: {name: sec, namespace: ns}
stringData: {TOKEN: t0ken}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: app, namespace: ns}
spec:
  serviceName: app
  selector: {matchLabels: {app: app}}
  template:
    metadata: {labels: {app: app}}
    spec:
      containers:
        - name: app
          image: redis:7.2
          command:
            - sh
            - -c
            - |
              exec redis-server /etc/redis/redis.conf --appendfsync always
          args: [--port, "6380", --maxmemory=1gb]
          envFrom:
            - configMapRef: {name: cfg}
              prefix: CFG_
            - secretRef: {name: sec}
          env:
            - {name: A, value: "1"}
            - name: B
              valueFrom: {configMapKeyRef: {name: cfg, key: LOG_LEVEL}}
          volumeMounts:
            - {name: data, mountPath: /data}
            - {name: data, mountPath: /data/redis/cache-x}
            - {name: scratch, mountPath: /data/redis/tmp}
            - {name: cfg, mountPath: /etc/redis}
            - {name: cfg, mountPath: /etc/app/level, subPath: LOG_LEVEL}
            - {name: host, mountPath: /var/log}
      volumes:
        - name: cfg
          configMap: {name: cfg, items: [{key: redis.conf, path: redis.conf}]}
        - {name: scratch, emptyDir: {}}
        - {name: host, hostPath: {path: /var/log}}
  volumeClaimTemplates:
    - metadata: {name: data}
      spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
"""


def container(text: str = MANIFEST) -> Container:
    return next(resolve(parse(textwrap.dedent(text), "m.yaml")))


def test_argv_words_and_flags_with_their_lines() -> None:
    c = container()
    assert c.words()[:3] == ["sh", "-c", "exec"]
    assert "redis-server" in c.words()
    assert c.flag("--port") is not None and c.flag("--port").text == "6380"  # type: ignore[union-attr]
    assert c.flag("--maxmemory").text == "1gb"  # type: ignore[union-attr]
    script = next(v for v in c.argv if v.text == "redis-server")
    assert script.line == 31  # the script's first line, under `- |`
    assert [v.text for v in c.after("redis-server")][:3] == ["/etc/redis/redis.conf",
                                                            "--appendfsync", "always"]


def test_env_and_env_from_with_where_they_are_written() -> None:
    c = container()
    assert c.env["A"].text == "1" and c.env["A"].line == 38
    assert c.env["CFG_LOG_LEVEL"].text == "debug" and c.env["CFG_LOG_LEVEL"].res.kind == \
        "ConfigMap" and c.env["CFG_LOG_LEVEL"].line == 5
    assert c.env["TOKEN"].text == "t0ken" and c.env["TOKEN"].res.kind == "Secret"
    assert c.env["B"].text == "debug" and c.env["B"].line == 5


def test_mounted_files_items_and_sub_path() -> None:
    c = container()
    f = c.files["/etc/redis/redis.conf"]
    assert f.key == "redis.conf" and f.line(2) == 8  # `appendonly yes`
    assert "/etc/app/level" not in c.files  # items list only redis.conf
    assert c.file("/somewhere/else/redis.conf") is f  # a seed copied by a start script


def test_volume_for_takes_the_longest_mount_path() -> None:
    c = container()
    assert c.volume_for("/data/redis").kind is VolumeKind.CLAIM_TEMPLATE
    assert c.volume_for("/data/redis/tmp/x").kind is VolumeKind.EMPTY_DIR
    assert c.volume_for("/data/redis/cache").kind is VolumeKind.CLAIM_TEMPLATE  # not cache-x
    assert c.volume_for("/var/log/app").kind is VolumeKind.HOST_PATH
    assert c.volume_for("/srv").kind is VolumeKind.NONE
    assert c.volume_for("/etc/redis").kind is VolumeKind.CONFIG
    assert c.volume_for("/data").durable and not c.volume_for("/srv").durable


def test_redis_server_reads_dir_from_its_config_file() -> None:
    srv = server_of(container())
    assert srv is not None and srv.service == "redis" and srv.store == "Redis"
    assert [d.path for d in srv.dirs] == ["/data/redis"]


def test_redis_conf() -> None:
    d = redis_conf('# c\nsave ""\nappendonly yes # on\nsentinel monitor m h 6379 2\n')
    assert [(x.name, x.args, x.line) for x in d] == [
        ("save", [""], 2), ("appendonly", ["yes"], 3),
        ("sentinel", ["monitor", "m", "h", "6379", "2"], 4)]


def test_properties() -> None:
    p = properties("# c\na=b\nc: d\n! x\ne f\\\n  g\nmin.insync.replicas = 2\n")
    assert {k: (v.value, v.line) for k, v in p.items()} == {
        "a": ("b", 2), "c": ("d", 3), "e": ("fg", 5), "min.insync.replicas": ("2", 7)}


def test_pg_conf() -> None:
    p = pg_conf("synchronous_commit = off # x\nlisten_addresses='*'\nport 5432\n"
                "data_directory = '/pg/data'\n#synchronous_commit = on\n")
    assert {k: (v.value, v.line) for k, v in p.items()} == {
        "synchronous_commit": ("off", 1), "listen_addresses": ("*", 2), "port": ("5432", 3),
        "data_directory": ("/pg/data", 4)}


def test_nats_conf_blocks_arrays_and_comments() -> None:
    text = ("listen: 0.0.0.0:4222\njetstream {\n  store_dir: \"/data/js\" // here\n"
            "  max_mem: 1G\n}\ncluster {\n  routes = [\n    nats://a:6222\n  ]\n"
            "  name: c1\n}\n# x: 1\njs2 {store_dir: /x, max_file: 2G}\n")
    conf = nats_conf(text)
    assert conf["jetstream.store_dir"].value == "/data/js"
    assert conf["jetstream.store_dir"].line == 3
    assert conf["cluster.name"].value == "c1" and "x" not in conf
    assert conf["js2.store_dir"].value == "/x" and conf["js2.max_file"].value == "2G"


def test_server_data_dirs_and_defaults() -> None:
    def srv(image: str, extra: str = "") -> list[str]:
        text = textwrap.dedent(f"""\
            apiVersion: apps/v1
            kind: Deployment
            metadata: {{name: d, namespace: ns}}
            spec:
              template:
                spec:
                  containers:
                    - name: c
                      image: {image}
            """) + extra
        found = server_of(container(text))
        assert found is not None, image
        return [d.path for d in found.dirs]

    assert srv("postgres:16") == ["/var/lib/postgresql/data"]
    assert srv("bitnami/postgresql:16") == ["/bitnami/postgresql/data"]
    assert srv("postgres:16", "          args: [-D, /pg]\n") == ["/pg"]
    assert srv("apache/kafka:3.9.0") == ["/tmp/kraft-combined-logs"]
    assert srv("apache/kafka:3.9.0", "          env: [{name: KAFKA_LOG_DIRS, "
               "value: '/a,/b'}]\n") == ["/a", "/b"]
    assert srv("nats:2.10", "          args: [-js]\n") == ["/tmp/nats/jetstream"]
    assert srv("nats:2.10") == []  # no JetStream, no data
    assert srv("redis:7", "          workingDir: /w\n") == ["/w"]


def test_image_name() -> None:
    assert image_name("docker.io/bitnami/redis:7.2@sha256:abc") == "bitnami/redis"
    assert image_name("redis") == "redis" and image_name("localhost:5000/x/y:1") == "x/y"
