//! The HTTPS server: TLS accept loop, one hyper connection per client, and the request
//! handler (faults, authentication, routing, the verbs, watch streams).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt as _;
use http::{HeaderMap, Method, Response, StatusCode, header};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt as _, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::Shared;
use crate::certs::{self, PeerCert, UserInfo};
use crate::faults::{Fault, RequestRecord};
use crate::kinds::{self, Kind};
use crate::store::{PatchType, StoreError, WatchEvent};

/// Response bodies: whole documents or watch streams.
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// Accept TLS connections forever.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let acceptor = tokio_rustls::TlsAcceptor::from(shared.tls.clone());
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let acceptor = acceptor.clone();
        let shared = shared.clone();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(stream).await else {
                return;
            };
            let peer = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|certs| certs.first())
                .and_then(|der| PeerCert::parse(der))
                .map(Arc::new);
            let dropper = Arc::new(Notify::new());
            let on_drop = dropper.clone();
            let service = hyper::service::service_fn(move |request| {
                handle(shared.clone(), dropper.clone(), peer.clone(), request)
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service);
            tokio::select! {
                _ = connection => {}
                () = on_drop.notified() => {}
            }
        });
    }
}

/// What a path addresses.
#[derive(Debug, Clone, PartialEq)]
enum Route {
    Discovery(Value),
    Health,
    Collection {
        kind: Kind,
        namespace: Option<String>,
    },
    Item {
        kind: Kind,
        namespace: String,
        name: String,
        subresource: Option<String>,
    },
    Unknown,
}

fn route(path: &str, server: &str) -> Route {
    if let Some(document) = kinds::discovery(path, server) {
        return Route::Discovery(document);
    }
    if matches!(path, "/healthz" | "/readyz" | "/livez") {
        return Route::Health;
    }
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, rest) = match segments.as_slice() {
        ["api", "v1", rest @ ..] => ("", rest),
        ["apis", group, "v1", rest @ ..] => (*group, rest),
        _ => return Route::Unknown,
    };
    let find = |resource: &str| kinds::find(group, resource);
    match rest {
        [resource] => match find(resource) {
            Some(kind) => Route::Collection {
                kind,
                namespace: None,
            },
            None => Route::Unknown,
        },
        [resource, name, tail @ ..] if find(resource).is_some_and(|k| !k.namespaced) => {
            let Some(kind) = find(resource) else {
                return Route::Unknown;
            };
            let subresource = match tail {
                [] => None,
                ["status"] => Some("status"),
                ["approval"] if kind == kinds::CSRS => Some("approval"),
                _ => return Route::Unknown,
            };
            Route::Item {
                kind,
                namespace: String::new(),
                name: (*name).to_owned(),
                subresource: subresource.map(str::to_owned),
            }
        }
        ["namespaces", namespace, resource, tail @ ..] => {
            let Some(kind) = find(resource).filter(|k| k.namespaced) else {
                return Route::Unknown;
            };
            match tail {
                [] => Route::Collection {
                    kind,
                    namespace: Some((*namespace).to_owned()),
                },
                [name] => Route::Item {
                    kind,
                    namespace: (*namespace).to_owned(),
                    name: (*name).to_owned(),
                    subresource: None,
                },
                [name, "status"] if kind.has_status => Route::Item {
                    kind,
                    namespace: (*namespace).to_owned(),
                    name: (*name).to_owned(),
                    subresource: Some("status".to_owned()),
                },
                _ => Route::Unknown,
            }
        }
        _ => Route::Unknown,
    }
}

fn query_pairs(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn query_get<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn verb(method: &Method, route: &Route, watch: bool) -> &'static str {
    match (route, method) {
        (Route::Discovery(_) | Route::Health, _) => "discovery",
        (Route::Collection { .. }, &Method::GET) if watch => "watch",
        (Route::Collection { .. }, &Method::GET) => "list",
        (Route::Collection { .. }, &Method::POST) => "create",
        (Route::Collection { .. }, &Method::DELETE) => "deletecollection",
        (Route::Item { .. }, &Method::GET) if watch => "watch",
        (Route::Item { .. }, &Method::GET) => "get",
        (Route::Item { .. }, &Method::PUT) => "update",
        (Route::Item { .. }, &Method::PATCH) => "patch",
        (Route::Item { .. }, &Method::DELETE) => "delete",
        _ => "other",
    }
}

fn document(status: StatusCode, value: &Value) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(value.to_string())).boxed_unsync());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

/// A `Status` error body, as the API server sends it.
pub fn status_body(code: u16, reason: &str, message: &str, details: Option<Value>) -> Value {
    let mut status = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code
    });
    if let (Some(details), Some(object)) = (details, status.as_object_mut()) {
        object.insert("details".into(), details);
    }
    status
}

fn failure(code: u16, reason: &str, message: &str, details: Option<Value>) -> Response<Body> {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    document(status, &status_body(code, reason, message, details))
}

fn fault_response(code: u16) -> Response<Body> {
    let reason = match code {
        500 => "InternalError",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        429 => "TooManyRequests",
        _ => "InternalError",
    };
    failure(code, reason, &format!("injected fault: {reason}"), None)
}

fn store_failure(error: StoreError, kind: &Kind, name: &str) -> Response<Body> {
    let details = Some(json!({"name": name, "group": kind.group, "kind": kind.resource}));
    match error {
        StoreError::NotFound => failure(
            404,
            "NotFound",
            &format!("{} \"{name}\" not found", kind.qualified()),
            details,
        ),
        StoreError::AlreadyExists => failure(
            409,
            "AlreadyExists",
            &format!("{} \"{name}\" already exists", kind.qualified()),
            details,
        ),
        StoreError::Conflict(message) => failure(409, "Conflict", &message, details),
        StoreError::Invalid(message) => failure(
            422,
            "Invalid",
            &format!("{} \"{name}\" is invalid: {message}", kind.kind),
            details,
        ),
        StoreError::BadPatch(message) => failure(400, "BadRequest", &message, None),
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

/// Who is calling: a known bearer token, else a valid client certificate.
fn authenticate(shared: &Shared, headers: &HeaderMap, peer: Option<&PeerCert>) -> Option<UserInfo> {
    if let Some(token) = bearer(headers) {
        return shared.token_user(token);
    }
    peer.filter(|p| p.valid_now()).map(PeerCert::user)
}

async fn handle(
    shared: Arc<Shared>,
    dropper: Arc<Notify>,
    peer: Option<Arc<PeerCert>>,
    request: http::Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let arrived = Instant::now();
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().unwrap_or_default().to_owned();
    let pairs = query_pairs(&query);
    let watch = matches!(query_get(&pairs, "watch"), Some("true" | "1"));
    let route = route(&path, &shared.server_address);
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut record = RequestRecord {
        method: parts.method.to_string(),
        path: path.clone(),
        query: query.clone(),
        verb: verb(&parts.method, &route, watch).to_owned(),
        resource: None,
        subresource: None,
        namespace: None,
        name: None,
        content_type: content_type.clone(),
        status: 0,
        user: None,
        at: arrived,
    };
    let user = authenticate(&shared, &parts.headers, peer.as_deref());
    record.user = user.as_ref().map(|u| u.username.clone());
    match &route {
        Route::Collection { kind, namespace } => {
            record.resource = Some(kind.resource.to_owned());
            record.namespace.clone_from(namespace);
        }
        Route::Item {
            kind,
            namespace,
            name,
            subresource,
        } => {
            record.resource = Some(kind.resource.to_owned());
            record.namespace = Some(namespace.clone());
            record.name = Some(name.clone());
            record.subresource.clone_from(subresource);
        }
        _ => {}
    }

    let (latency, fault, refuse) = {
        let mut faults = shared.faults();
        (faults.latency, faults.next.pop_front(), faults.refuse)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let response = match fault {
        Some(Fault::Drop) => {
            shared.log(record);
            dropper.notify_one();
            std::future::pending::<()>().await;
            return Ok(failure(500, "InternalError", "dropped", None));
        }
        Some(Fault::Status(code)) => Some(fault_response(code)),
        Some(Fault::TooManyRequests { retry_after_secs }) => {
            let mut response = failure(
                429,
                "TooManyRequests",
                "Too many requests, please try again later.",
                Some(json!({"retryAfterSeconds": retry_after_secs})),
            );
            if let Ok(value) = header::HeaderValue::from_str(&retry_after_secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            Some(response)
        }
        Some(Fault::Delay(delay)) => {
            tokio::time::sleep(delay).await;
            None
        }
        None => None,
    };
    let open = matches!(route, Route::Health) || path == "/version";
    let response = match response {
        Some(response) => response,
        None if !open && refuse == Some(401) => unauthorized(),
        None if !open && user.is_none() => unauthorized(),
        None if !open && refuse.is_some() => forbidden(&record),
        None => {
            let body = match body.collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(_) => Bytes::new(),
            };
            serve_route(
                &shared,
                &parts.method,
                route,
                &pairs,
                content_type.as_deref(),
                &body,
                user.as_ref(),
            )
        }
    };
    record.status = response.status().as_u16();
    shared.log(record);
    Ok(response)
}

fn unauthorized() -> Response<Body> {
    failure(401, "Unauthorized", "Unauthorized", None)
}

fn forbidden(record: &RequestRecord) -> Response<Body> {
    let resource = record.resource.clone().unwrap_or_default();
    let mut message = format!(
        "{resource} is forbidden: User \"system:serviceaccount:kube-system:multus\" cannot {} resource \"{resource}\"",
        record.verb
    );
    if let Some(namespace) = &record.namespace {
        message.push_str(&format!(" in the namespace \"{namespace}\""));
    }
    failure(403, "Forbidden", &message, None)
}

fn serve_route(
    shared: &Shared,
    method: &Method,
    route: Route,
    pairs: &[(String, String)],
    content_type: Option<&str>,
    body: &[u8],
    user: Option<&UserInfo>,
) -> Response<Body> {
    let parse_body = || -> Result<Value, Response<Body>> {
        serde_json::from_slice(body).map_err(|e| {
            failure(
                400,
                "BadRequest",
                &format!("the body of the request was in an unknown format: {e}"),
                None,
            )
        })
    };
    match route {
        Route::Discovery(document_value) => document(StatusCode::OK, &document_value),
        Route::Health => {
            let mut response = Response::new(Full::new(Bytes::from_static(b"ok")).boxed_unsync());
            *response.status_mut() = StatusCode::OK;
            response
        }
        Route::Unknown => failure(
            404,
            "NotFound",
            "the server could not find the requested resource",
            None,
        ),
        Route::Collection { kind, namespace } => match *method {
            Method::GET if matches!(query_get(pairs, "watch"), Some("true" | "1")) => {
                watch(shared, kind, namespace, pairs)
            }
            Method::GET => {
                let store = shared.store();
                let items = filter_fields(store.list(&kind, namespace.as_deref()), pairs);
                document(
                    StatusCode::OK,
                    &json!({
                        "kind": format!("{}List", kind.kind), "apiVersion": kind.api_version(),
                        "metadata": {"resourceVersion": store.resource_version().to_string()},
                        "items": items
                    }),
                )
            }
            Method::POST => {
                let namespace = match namespace {
                    Some(namespace) => namespace,
                    None if !kind.namespaced => String::new(),
                    None => {
                        return failure(405, "MethodNotAllowed", "create needs a namespace", None);
                    }
                };
                let mut object = match parse_body() {
                    Ok(object) => object,
                    Err(response) => return response,
                };
                if kind == kinds::CSRS {
                    if let Some(user) = user {
                        certs::stamp_requester(&mut object, user);
                    }
                    if shared.auto_approve() {
                        certs::add_condition(
                            &mut object,
                            "Approved",
                            "AutoApproved",
                            "approved by the stand-in",
                        );
                    }
                }
                let name = object
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let created = shared.store().create(&kind, &namespace, object);
                match created {
                    Ok(created) => {
                        let created = sign_if_approved(shared, &kind, created);
                        document(StatusCode::CREATED, &created)
                    }
                    Err(e) => store_failure(e, &kind, &name),
                }
            }
            _ => failure(405, "MethodNotAllowed", "method not allowed", None),
        },
        Route::Item {
            kind,
            namespace,
            name,
            subresource,
        } => {
            let status_only = subresource.is_some();
            let result = match *method {
                Method::GET => shared
                    .store()
                    .get(&kind, &namespace, &name)
                    .ok_or(StoreError::NotFound),
                Method::PUT => match parse_body() {
                    Ok(object) => {
                        shared
                            .store()
                            .update(&kind, &namespace, &name, object, status_only)
                    }
                    Err(response) => return response,
                },
                Method::PATCH => {
                    let patch_type = match content_type
                        .map(|c| c.split(';').next().unwrap_or(c).trim())
                    {
                        Some(
                            "application/merge-patch+json"
                            | "application/strategic-merge-patch+json",
                        ) => PatchType::Merge,
                        Some("application/json-patch+json") => PatchType::Json,
                        other => {
                            return failure(
                                415,
                                "UnsupportedMediaType",
                                &format!(
                                    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got {})",
                                    other.unwrap_or("none")
                                ),
                                None,
                            );
                        }
                    };
                    match parse_body() {
                        Ok(patch) => shared.store().patch(
                            &kind,
                            &namespace,
                            &name,
                            patch_type,
                            &patch,
                            status_only,
                        ),
                        Err(response) => return response,
                    }
                }
                Method::DELETE => shared.store().delete(&kind, &namespace, &name),
                _ => return failure(405, "MethodNotAllowed", "method not allowed", None),
            };
            match result {
                Ok(object) => {
                    let object = if *method == Method::GET {
                        object
                    } else {
                        sign_if_approved(shared, &kind, object)
                    };
                    document(StatusCode::OK, &object)
                }
                Err(e) => store_failure(e, &kind, &name),
            }
        }
    }
}

/// The signer: an approved client CSR gets its certificate (or a `Failed` condition).
fn sign_if_approved(shared: &Shared, kind: &Kind, csr: Value) -> Value {
    if *kind != kinds::CSRS {
        return csr;
    }
    let outcome = match certs::issue(&csr, shared.issuer()) {
        Ok(None) => return csr,
        Ok(Some(pem)) => Ok(pem),
        Err(reason) => Err(reason),
    };
    let name = csr
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let mut updated = csr.clone();
    match outcome {
        Ok(pem) => {
            use base64::Engine as _;
            let encoded = base64::engine::general_purpose::STANDARD.encode(pem);
            if let Some(object) = updated.as_object_mut() {
                let status = object.entry("status").or_insert_with(|| json!({}));
                if let Some(status) = status.as_object_mut() {
                    status.insert("certificate".into(), encoded.into());
                }
            }
        }
        Err(reason) => {
            certs::add_condition(&mut updated, "Failed", "SignerValidationFailure", &reason)
        }
    }
    if let Some(meta) = updated.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
    }
    shared
        .store()
        .update(kind, "", &name, updated, true)
        .unwrap_or(csr)
}

/// Keep the objects matching a `fieldSelector` of `metadata.name` / `metadata.namespace`
/// equalities (what clients use to watch one object).
fn filter_fields(items: Vec<Value>, pairs: &[(String, String)]) -> Vec<Value> {
    let Some(selector) = query_get(pairs, "fieldSelector") else {
        return items;
    };
    items
        .into_iter()
        .filter(|object| matches_fields(object, selector))
        .collect()
}

fn matches_fields(object: &Value, selector: &str) -> bool {
    selector.split(',').filter(|s| !s.is_empty()).all(|term| {
        let (field, wanted, equal) = match term.split_once("!=") {
            Some((f, v)) => (f, v, false),
            None => match term.split_once('=') {
                Some((f, v)) => (f, v.trim_start_matches('='), true),
                None => return true,
            },
        };
        let pointer = format!("/{}", field.replace('.', "/"));
        let actual = object
            .pointer(&pointer)
            .and_then(Value::as_str)
            .unwrap_or_default();
        (actual == wanted) == equal
    })
}

fn watch(
    shared: &Shared,
    kind: Kind,
    namespace: Option<String>,
    pairs: &[(String, String)],
) -> Response<Body> {
    let from: u64 = query_get(pairs, "resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let selector = query_get(pairs, "fieldSelector")
        .unwrap_or_default()
        .to_owned();
    let timeout = query_get(pairs, "timeoutSeconds")
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(Duration::from_secs(1800), Duration::from_secs);
    let relevant = {
        let namespace = namespace.clone();
        let selector = selector.clone();
        move |event: &WatchEvent| {
            event.resource == kind.resource
                && namespace.as_deref().is_none_or(|n| n == event.namespace)
                && matches_fields(&event.object, &selector)
        }
    };
    let (initial, receiver, last) = {
        let store = shared.store();
        let initial: Vec<Value> = if from == 0 {
            store
                .list(&kind, namespace.as_deref())
                .into_iter()
                .filter(|o| matches_fields(o, &selector))
                .map(|object| json!({"type": "ADDED", "object": object}))
                .collect()
        } else {
            store
                .history_after(from)
                .into_iter()
                .filter(|e| relevant(e))
                .map(|e| json!({"type": e.kind, "object": e.object}))
                .collect()
        };
        (initial, store.subscribe(), store.resource_version())
    };
    let line = |value: Value| Bytes::from(format!("{value}\n"));
    let initial = futures_util::stream::iter(initial.into_iter().map(line));
    let live = futures_util::stream::unfold(receiver, move |mut receiver| {
        let relevant = relevant.clone();
        async move {
            loop {
                match receiver.recv().await {
                    Ok(event) if event.resource_version > last && relevant(&event) => {
                        let value = json!({"type": event.kind, "object": event.object});
                        return Some((Bytes::from(format!("{value}\n")), receiver));
                    }
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                }
            }
        }
    });
    let stream = initial
        .chain(live)
        .take_until(tokio::time::sleep(timeout))
        .map(|bytes| Ok::<_, Infallible>(Frame::data(bytes)));
    let mut response = Response::new(StreamBody::new(stream).boxed_unsync());
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}
