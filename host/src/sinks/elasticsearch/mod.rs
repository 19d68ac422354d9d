//! Elasticsearch sink (being written).
