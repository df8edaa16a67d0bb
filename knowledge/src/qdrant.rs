//! Qdrant backend of [`VectorIndex`], for knowledge bases beyond one node's
//! memory or shared by several gateway nodes. Selected by configuration; the
//! rest of the knowledge base (lexical index, fusion, store) is unchanged.
//!
//! Points use the chunk key as their numeric id, cosine distance, and carry
//! `lang` and `tags` as keyword payload (indexed) so filters run inside Qdrant.

use std::collections::HashSet;

use async_trait::async_trait;
use qdrant_client::Qdrant;
use qdrant_client::qdrant::point_id::PointIdOptions;
use qdrant_client::qdrant::{
    Condition, CreateCollectionBuilder, CreateFieldIndexCollectionBuilder, DeletePointsBuilder,
    Distance, FieldType, Filter as QFilter, PointId, PointStruct, PointsIdsList,
    QueryPointsBuilder, ScrollPointsBuilder, UpsertPointsBuilder, Value, VectorParamsBuilder,
};

use crate::error::{KbError, Result};
use crate::vector::{Filter, VectorEntry, VectorIndex};

fn err(e: qdrant_client::QdrantError) -> KbError {
    KbError::Index(format!("qdrant: {e}"))
}

/// A Qdrant collection used as the vector index.
pub struct QdrantIndex {
    client: Qdrant,
    collection: String,
    dim: usize,
}

impl std::fmt::Debug for QdrantIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QdrantIndex")
            .field("collection", &self.collection)
            .field("dim", &self.dim)
            .finish()
    }
}

impl QdrantIndex {
    /// Connects to `url` (gRPC, e.g. `http://127.0.0.1:6334`) and creates the
    /// collection (cosine, `dim`) and its payload indexes if missing. An
    /// existing collection of another dimension is an error.
    pub async fn connect(
        url: &str,
        api_key: Option<String>,
        collection: &str,
        dim: usize,
    ) -> Result<Self> {
        let client = Qdrant::from_url(url)
            .api_key(api_key)
            .build()
            .map_err(err)?;
        if !client.collection_exists(collection).await.map_err(err)? {
            client
                .create_collection(
                    CreateCollectionBuilder::new(collection)
                        .vectors_config(VectorParamsBuilder::new(dim as u64, Distance::Cosine)),
                )
                .await
                .map_err(err)?;
            for field in ["lang", "tags"] {
                client
                    .create_field_index(
                        CreateFieldIndexCollectionBuilder::new(
                            collection,
                            field,
                            FieldType::Keyword,
                        )
                        .wait(true),
                    )
                    .await
                    .map_err(err)?;
            }
        } else {
            let info = client.collection_info(collection).await.map_err(err)?;
            let size = info
                .result
                .and_then(|i| i.config)
                .and_then(|c| c.params)
                .and_then(|p| p.vectors_config)
                .and_then(|v| v.config)
                .and_then(|c| match c {
                    qdrant_client::qdrant::vectors_config::Config::Params(p) => Some(p.size),
                    _ => None,
                });
            if let Some(size) = size
                && size as usize != dim
            {
                return Err(KbError::Invalid(format!(
                    "qdrant collection {collection} has {size} dimensions, the embedder {dim}"
                )));
            }
        }
        Ok(Self {
            client,
            collection: collection.to_string(),
            dim,
        })
    }

    /// Deletes the collection (tests, re-creation with another model).
    pub async fn drop_collection(self) -> Result<()> {
        self.client
            .delete_collection(&self.collection)
            .await
            .map_err(err)?;
        Ok(())
    }

    fn filter(filter: &Filter) -> Option<QFilter> {
        let mut must = Vec::new();
        if let Some(l) = &filter.lang {
            must.push(Condition::matches("lang", l.clone()));
        }
        for t in &filter.tags {
            must.push(Condition::matches("tags", t.clone()));
        }
        (!must.is_empty()).then(|| QFilter::must(must))
    }
}

fn key_of(id: Option<PointId>) -> Option<u64> {
    match id?.point_id_options? {
        PointIdOptions::Num(n) => Some(n),
        PointIdOptions::Uuid(_) => None,
    }
}

#[async_trait]
impl VectorIndex for QdrantIndex {
    fn dim(&self) -> usize {
        self.dim
    }

    async fn upsert(&self, entries: Vec<VectorEntry>) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let points: Vec<PointStruct> = entries
            .into_iter()
            .map(|e| {
                let mut payload = qdrant_client::Payload::new();
                payload.insert("lang", Value::from(e.lang));
                payload.insert(
                    "tags",
                    Value::from(e.tags.into_iter().map(Value::from).collect::<Vec<_>>()),
                );
                PointStruct::new(e.key, e.vector.to_vec(), payload)
            })
            .collect();
        for chunk in points.chunks(256) {
            self.client
                .upsert_points(
                    UpsertPointsBuilder::new(&self.collection, chunk.to_vec()).wait(true),
                )
                .await
                .map_err(err)?;
        }
        Ok(())
    }

    async fn remove(&self, keys: &[u64]) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        for chunk in keys.chunks(1024) {
            let ids: Vec<PointId> = chunk.iter().map(|&k| PointId::from(k)).collect();
            self.client
                .delete_points(
                    DeletePointsBuilder::new(&self.collection)
                        .points(PointsIdsList { ids })
                        .wait(true),
                )
                .await
                .map_err(err)?;
        }
        Ok(())
    }

    async fn keys(&self) -> Result<HashSet<u64>> {
        let mut out = HashSet::new();
        let mut offset: Option<PointId> = None;
        loop {
            let mut req = ScrollPointsBuilder::new(&self.collection)
                .limit(1000)
                .with_payload(false)
                .with_vectors(false);
            if let Some(o) = offset.take() {
                req = req.offset(o);
            }
            let page = self.client.scroll(req).await.map_err(err)?;
            out.extend(page.result.into_iter().filter_map(|p| key_of(p.id)));
            match page.next_page_offset {
                Some(next) => offset = Some(next),
                None => break,
            }
        }
        Ok(out)
    }

    async fn search(&self, query: &[f32], filter: &Filter, k: usize) -> Result<Vec<(u64, f32)>> {
        if k == 0 {
            return Ok(Vec::new());
        }
        let mut req = QueryPointsBuilder::new(&self.collection)
            .query(query.to_vec())
            .limit(k as u64);
        if let Some(f) = Self::filter(filter) {
            req = req.filter(f);
        }
        let res = self.client.query(req).await.map_err(err)?;
        Ok(res
            .result
            .into_iter()
            .filter_map(|p| Some((key_of(p.id)?, p.score)))
            .collect())
    }

    async fn flush(&self) -> Result<()> {
        // Writes above wait for Qdrant to apply them.
        Ok(())
    }
}
