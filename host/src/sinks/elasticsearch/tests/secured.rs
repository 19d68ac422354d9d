//! An Elasticsearch with security on, as its reference documents it, for
//! what the sink touches: `GET /` and `POST /_bulk` authenticated by
//! `Authorization: ApiKey <base64(id:api_key)>` (the `encoded` value
//! `POST /_security/api_key` returns) or `Basic <base64(user:password)>`;
//! no or wrong credentials answer 401 `security_exception` with a
//! `WWW-Authenticate` header; an authenticated bulk request answers 200 and
//! authorises each item on its own (since 5.3: "individual bulk item
//! responses return security exception with 403"): writing a document
//! needs the `index`, `write` or `all` index privilege on its index, and
//! creating a missing index on the way (auto-create) needs `auto_configure`,
//! `create_index`, `manage` or `all`.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use tokio::sync::Notify;

use super::WAIT;
use super::mock::ndjson;
use crate::config::index_matches;

/// Index privileges of one role descriptor entry: `names` patterns.
#[derive(Clone, Debug)]
pub struct IndexGrant {
    pub names: Vec<&'static str>,
    pub privileges: Vec<&'static str>,
}

/// Who a request authenticated as, and what it may write.
#[derive(Clone, Debug)]
struct Principal {
    /// `api_key:<id>` or `user:<name>`, for the tests.
    name: String,
    /// How Elasticsearch names it in an authorization error.
    described: String,
    grants: Vec<IndexGrant>,
}

/// One bulk request as the server saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    /// The `Authorization` header exactly as sent.
    pub authorization: Option<String>,
    /// Whom it authenticated as (`None`: refused with 401).
    pub principal: Option<String>,
    /// `(index, _id)` of each action, in order.
    pub items: Vec<(String, String)>,
}

#[derive(Default)]
struct Security {
    /// API keys by id: `(api_key, principal)`.
    api_keys: HashMap<String, (String, Principal)>,
    /// Users by name: `(password, principal)`.
    users: HashMap<String, (String, Principal)>,
}

struct Cluster {
    security: Security,
    indices: Mutex<BTreeSet<String>>,
    seen: Mutex<Vec<Seen>>,
    arrived: Notify,
}

/// A running secured fixture.
pub struct Secured {
    pub addr: SocketAddr,
    cluster: Arc<Cluster>,
    served: tokio::task::JoinHandle<()>,
}

/// Builds the fixture's users and API keys.
#[derive(Default)]
pub struct SecuredBuilder {
    security: Security,
}

impl SecuredBuilder {
    /// An API key (`POST /_security/api_key` with these `role_descriptors`).
    pub fn api_key(
        mut self,
        id: &str,
        api_key: &str,
        owner: &str,
        grants: Vec<IndexGrant>,
    ) -> Self {
        let principal = Principal {
            name: format!("api_key:{id}"),
            described: format!("API key id [{id}] of user [{owner}]"),
            grants,
        };
        self.security
            .api_keys
            .insert(id.into(), (api_key.into(), principal));
        self
    }

    /// A native-realm user with one role.
    pub fn user(mut self, name: &str, password: &str, grants: Vec<IndexGrant>) -> Self {
        let principal = Principal {
            name: format!("user:{name}"),
            described: format!("user [{name}] with roles [{name}_role]"),
            grants,
        };
        self.security
            .users
            .insert(name.into(), (password.into(), principal));
        self
    }

    pub async fn start(self) -> Secured {
        let cluster = Arc::new(Cluster {
            security: self.security,
            indices: Mutex::new(BTreeSet::new()),
            seen: Mutex::new(Vec::new()),
            arrived: Notify::new(),
        });
        let app = Router::new()
            .route("/", get(root))
            .route("/_bulk", post(bulk))
            .with_state(Arc::clone(&cluster));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let served = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Secured {
            addr,
            cluster,
            served,
        }
    }
}

impl Secured {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.cluster.seen.lock().unwrap().clone()
    }

    /// Waits until a bulk request for which `f` holds has arrived.
    pub async fn wait_for(&self, what: &str, f: impl Fn(&[Seen]) -> bool) -> Vec<Seen> {
        let wait = async {
            loop {
                let arrived = self.cluster.arrived.notified();
                let seen = self.seen();
                if f(&seen) {
                    return seen;
                }
                arrived.await;
            }
        };
        tokio::time::timeout(WAIT, wait)
            .await
            .unwrap_or_else(|_| panic!("never saw {what}: {:#?}", self.seen()))
    }
}

impl Drop for Secured {
    fn drop(&mut self) {
        self.served.abort();
    }
}

/// The `Authorization` value for an API key, as `encoded` is built.
pub fn api_key_header(id: &str, api_key: &str) -> String {
    format!("ApiKey {}", STANDARD.encode(format!("{id}:{api_key}")))
}

pub fn basic_header(user: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
}

impl Security {
    /// The principal `authorization` authenticates, or the 401 reason.
    fn authenticate(&self, authorization: Option<&str>) -> Result<&Principal, String> {
        let Some(value) = authorization else {
            return Err("missing authentication credentials for REST request [/_bulk]".into());
        };
        let bad = || {
            "unable to authenticate with provided credentials and anonymous access is not allowed for this request".to_string()
        };
        let (scheme, token) = value.split_once(' ').ok_or_else(bad)?;
        let decoded = STANDARD.decode(token).map_err(|_| bad())?;
        let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
        let (who, secret) = decoded.split_once(':').ok_or_else(bad)?;
        let table = match scheme {
            "ApiKey" => &self.api_keys,
            "Basic" => &self.users,
            _ => return Err(bad()),
        };
        match table.get(who) {
            Some((expected, principal)) if expected == secret => Ok(principal),
            _ => Err(bad()),
        }
    }
}

fn unauthenticated(reason: String) -> Response {
    let challenge = [r#"Basic realm="security" charset="UTF-8""#, "ApiKey"];
    let error = json!({"type": "security_exception", "reason": reason,
        "header": {"WWW-Authenticate": challenge}});
    let body = json!({"error": {"root_cause": [error.clone()], "type": "security_exception",
        "reason": error["reason"], "header": error["header"]}, "status": 401});
    let mut resp = (StatusCode::UNAUTHORIZED, json_body(body)).into_response();
    for c in challenge {
        resp.headers_mut()
            .append(header::WWW_AUTHENTICATE, c.parse().unwrap());
    }
    resp
}

fn authorization(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn root(State(cluster): State<Arc<Cluster>>, headers: HeaderMap) -> Response {
    match cluster
        .security
        .authenticate(authorization(&headers).as_deref())
    {
        Ok(_) => {
            json_body(json!({"version": {"number": "8.15.0"}, "tagline": "You Know, for Search"}))
                .into_response()
        }
        Err(reason) => unauthenticated(reason),
    }
}

/// Whether `principal` holds one of `privileges` on `index`.
fn granted(principal: &Principal, index: &str, privileges: &[&str]) -> bool {
    principal.grants.iter().any(|g| {
        g.names.iter().any(|p| index_matches(p, index))
            && g.privileges.iter().any(|p| privileges.contains(p))
    })
}

async fn bulk(State(cluster): State<Arc<Cluster>>, headers: HeaderMap, body: Bytes) -> Response {
    let authorization = authorization(&headers);
    let principal = cluster.security.authenticate(authorization.as_deref());
    let text = ndjson(&headers, &body);
    let items: Vec<(String, String)> = text
        .lines()
        .collect::<Vec<_>>()
        .chunks(2)
        .map(|pair| {
            let action: Value = serde_json::from_str(pair[0]).expect("action line");
            let a = &action["index"];
            (
                a["_index"].as_str().expect("_index").to_owned(),
                a["_id"].as_str().expect("_id").to_owned(),
            )
        })
        .collect();
    let seen = Seen {
        authorization,
        principal: principal.as_ref().ok().map(|p| p.name.clone()),
        items: items.clone(),
    };
    cluster.seen.lock().unwrap().push(seen);
    cluster.arrived.notify_waiters();
    let principal = match principal {
        Ok(p) => p,
        Err(reason) => return unauthenticated(reason),
    };
    let mut indices = cluster.indices.lock().unwrap();
    let results: Vec<Value> = items
        .iter()
        .map(|(index, id)| {
            let write = ["index", "write", "all"];
            let auto_create = ["auto_configure", "create_index", "manage", "all"];
            let denied = if !granted(principal, index, &write) {
                Some(("indices:data/write/bulk[s]", "create_doc,create,delete,index,write,all"))
            } else if !indices.contains(index) && !granted(principal, index, &auto_create) {
                Some(("indices:admin/auto_create", "auto_configure,create_index,manage,all"))
            } else {
                None
            };
            match denied {
                Some((action, privileges)) => json!({"index": {"_index": index, "_id": id, "status": 403,
                    "error": {"type": "security_exception", "reason": format!(
                        "action [{action}] is unauthorized for {} on indices [{index}], this action is granted by the index privileges [{privileges}]",
                        principal.described)}}}),
                None => {
                    indices.insert(index.clone());
                    json!({"index": {"_index": index, "_id": id, "_version": 1, "result": "created",
                        "_shards": {"total": 2, "successful": 1, "failed": 0},
                        "_seq_no": 0, "_primary_term": 1, "status": 201}})
                }
            }
        })
        .collect();
    let errors = results.iter().any(|r| r["index"]["error"].is_object());
    json_body(json!({"took": 2, "errors": errors, "items": results})).into_response()
}

fn json_body(v: Value) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], v.to_string())
}
