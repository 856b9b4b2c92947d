"""A Spark Structured Streaming file sink, for tests/writers.rs.

Usage: python spark_sink.py IN OUT
Streams the JSON files in IN (fields userId, date), one file a micro-batch in the order of their
modification times, into OUT/date=YYYY-MM-DD/part-….parquet with Spark's file sink, whose log
(OUT/_spark_metadata) is compacted every third batch. Uses a local Spark, with no UI.
"""

import sys

from pyspark.sql import SparkSession

source, out = sys.argv[1], sys.argv[2]
spark = (
    SparkSession.builder.master("local[1]")
    .config("spark.ui.enabled", "false")
    .config("spark.sql.shuffle.partitions", "1")
    .config("spark.sql.streaming.fileSink.log.compactInterval", "3")
    .getOrCreate()
)
spark.sparkContext.setLogLevel("ERROR")
events = (
    spark.readStream.schema("userId LONG, date STRING")
    .option("maxFilesPerTrigger", 1)
    .json(source)
)
query = (
    events.writeStream.format("parquet")
    .partitionBy("date")
    .option("path", out)
    .option("checkpointLocation", out + ".checkpoint")
    .trigger(availableNow=True)
    .start()
)
query.awaitTermination()
spark.stop()
