"""Feast objects of drill's local stack: one entity, one feature view over a PostgreSQL
table of canary drivers (the offline truth), and the feature service drills read.

`drill stack up` copies this file next to the feature_store.yaml it generates in the
state folder and runs `feast apply` there. The table and its rows are created by the
deployment (services/feast/local.py), which also knows the canary values to expect.
"""

from datetime import timedelta

from feast import Entity, FeatureService, FeatureView, Field
from feast.infra.offline_stores.contrib.postgres_offline_store.postgres_source import (
    PostgreSQLSource,
)
from feast.types import Float64, Int64
from feast.value_type import ValueType

driver = Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT64,
                description="A driver; ids 1001-1005 are drill's canaries.")

driver_stats_source = PostgreSQLSource(
    name="drill_driver_stats_source",
    query="SELECT * FROM drill_driver_stats",
    timestamp_field="event_timestamp",
    created_timestamp_column="created",
)

driver_stats = FeatureView(
    name="drill_driver_stats",
    entities=[driver],
    # Long enough that incremental materialisation has a start when none ran before;
    # the canary rows are dated in 2025 and must stay within it for years.
    ttl=timedelta(days=3650),
    schema=[
        Field(name="driver_id", dtype=Int64),
        Field(name="conv_rate", dtype=Float64),
        Field(name="trips", dtype=Int64),
    ],
    online=True,
    source=driver_stats_source,
)

drill_canary = FeatureService(name="drill_canary", features=[driver_stats])
