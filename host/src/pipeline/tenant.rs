//! What a running tenant shares across its pipelines: its records/s
//! bucket, its outbound HTTP slots and rate, its scheduling weight.

use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::config::{Quotas, TenantBinding};
use crate::runtime::http::{HttpQuota, OutboundRules, Upstreams};
use crate::runtime::rate::RateLimiter;

/// One per tenant, rebuilt when its quotas or weight change (its pipelines
/// are rebuilt with it).
#[derive(Debug)]
pub struct TenantShare {
    pub id: String,
    pub weight: u32,
    pub quotas: Quotas,
    records: Option<RateLimiter>,
    /// Outbound HTTP slots, rate and credentials of all its modules.
    pub http: HttpQuota,
    binding: TenantBinding,
}

impl TenantShare {
    /// Reads the tenant's upstream secrets from the environment.
    pub fn new(binding: &TenantBinding) -> anyhow::Result<Self> {
        // The tenant's token endpoints go through its own allowlist and
        // the address rules (never private, loopback or metadata).
        let rules =
            OutboundRules::parse(&binding.allowed_outbound_hosts, false).map_err(|(i, e)| {
                anyhow::anyhow!("tenant {}: allowed_outbound_hosts[{i}]: {e}", binding.id)
            })?;
        let upstreams = Upstreams::for_tenant(
            &binding.upstreams,
            &|k| std::env::var(k).ok(),
            Arc::new(rules),
        )
        .map_err(|e| anyhow::anyhow!("tenant {}: {e:#}", binding.id))?;
        let q = &binding.quotas;
        // A one-second burst: short spikes pass, the average holds.
        let bucket = |per_second: u64| {
            (per_second > 0).then(|| RateLimiter::new(per_second as f64, per_second as f64))
        };
        Ok(Self {
            id: binding.id.clone(),
            weight: binding.weight,
            quotas: q.clone(),
            records: bucket(q.records_per_second),
            http: HttpQuota {
                permits: Arc::new(Semaphore::new(q.http_concurrency)),
                rate: bucket(q.http_requests_per_second).map(Arc::new),
                upstreams: Arc::new(upstreams),
            },
            binding: binding.clone(),
        })
    }

    /// What the tenant's file granted it, as this share was built from.
    pub fn binding(&self) -> &TenantBinding {
        &self.binding
    }

    /// Whether this runtime still matches `binding` (else rebuild).
    pub fn matches(&self, binding: &TenantBinding) -> bool {
        self.binding == *binding
    }

    /// Waits until `n` records fit the tenant's records/s quota.
    pub async fn admit_records(&self, n: usize) {
        if let Some(bucket) = &self.records {
            bucket.acquire(n as u64).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Duration;

    /// The tenant's `http_requests_per_second` becomes a bucket holding
    /// one second of requests, refilled at that rate, on virtual time so
    /// a loaded machine cannot blur the count.
    #[tokio::test(start_paused = true)]
    async fn http_quota_is_a_one_second_bucket_at_the_tenants_rate() {
        let binding = TenantBinding {
            id: "h".into(),
            quotas: Quotas {
                http_requests_per_second: 5,
                ..Quotas::default()
            },
            ..TenantBinding::default()
        };
        let share = TenantShare::new(&binding).unwrap();
        let rate = share.http.rate.as_ref().expect("a quota makes a bucket");
        assert_eq!((0..30).filter(|_| rate.try_acquire(1)).count(), 5);
        tokio::time::advance(Duration::from_millis(400)).await;
        assert_eq!((0..30).filter(|_| rate.try_acquire(1)).count(), 2);
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!((0..30).filter(|_| rate.try_acquire(1)).count(), 5);

        let unlimited = TenantShare::new(&TenantBinding::default()).unwrap();
        assert!(unlimited.http.rate.is_none());
    }
}
