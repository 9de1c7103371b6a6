//! Running one TCP connection through a plugin, the way Envoy's network filter chain
//! would: `proxy_on_context_create`, `proxy_on_new_connection`, then downstream and
//! upstream data, both close callbacks, and `proxy_on_done` / `proxy_on_log` /
//! `proxy_on_delete`.

use std::collections::BTreeMap;

use crate::abi::{peer, Action, StreamType};
use crate::error::Error;
use crate::http::set_address;
use crate::plugin::{Cb, Plugin};
use crate::state::{LogEntry, StreamKind};

/// A connection being built; [`TcpConnection::send`] runs it through the plugin.
pub struct TcpConnection<'p> {
    plugin: &'p mut Plugin,
    properties: BTreeMap<String, Vec<u8>>,
    downstream: Vec<Vec<u8>>,
    upstream: Vec<Vec<u8>>,
}

/// What happened to a connection.
#[derive(Clone, Debug)]
pub struct ConnectionOutcome {
    /// The stream context id the connection had.
    pub context_id: u32,
    /// What `proxy_on_new_connection` answered.
    pub action: Action,
    /// Filter state the plugin set (`set_envoy_filter_state`), by key.
    pub filter_state: BTreeMap<String, String>,
    /// Downstream bytes as forwarded upstream (after the plugin's edits).
    pub downstream_data: Vec<u8>,
    /// Upstream bytes as forwarded downstream.
    pub upstream_data: Vec<u8>,
    /// Streams the plugin closed with `proxy_close_stream`.
    pub closed: Vec<StreamType>,
    /// Log lines written while the connection was processed.
    pub logs: Vec<LogEntry>,
}

impl ConnectionOutcome {
    /// The filter state value under `key` (e.g. `envoy.tcp_proxy.cluster`).
    pub fn filter_state(&self, key: &str) -> Option<&str> {
        self.filter_state.get(key).map(String::as_str)
    }
}

impl<'p> TcpConnection<'p> {
    /// Adds a chunk of data from the client.
    pub fn downstream(mut self, data: impl AsRef<[u8]>) -> Self {
        self.downstream.push(data.as_ref().to_vec());
        self
    }

    /// Adds a chunk of data from the server.
    pub fn upstream(mut self, data: impl AsRef<[u8]>) -> Self {
        self.upstream.push(data.as_ref().to_vec());
        self
    }

    /// Sets any other connection property.
    pub fn property(mut self, key: &str, value: impl AsRef<[u8]>) -> Self {
        self.properties
            .insert(key.to_string(), value.as_ref().to_vec());
        self
    }

    /// Runs the connection through the plugin.
    pub fn send(self) -> Result<ConnectionOutcome, Error> {
        let TcpConnection {
            plugin,
            properties,
            downstream,
            upstream,
        } = self;
        let first_log = plugin.log_count();
        let id = plugin.new_stream(StreamKind::Tcp)?;
        if let Some(st) = plugin.stream_mut(id) {
            st.properties = properties;
        }
        let action = plugin
            .call::<i32, i32>("proxy_on_new_connection", Cb::NewConnection, id, id as i32)?
            .map_or(Action::Continue, Action::from_code);
        let mut forwarded_down = Vec::new();
        let mut forwarded_up = Vec::new();
        for (chunks, which, upstream_side) in [
            (downstream, Cb::DownstreamData, false),
            (upstream, Cb::UpstreamData, true),
        ] {
            let count = chunks.len();
            for (i, chunk) in chunks.into_iter().enumerate() {
                let len = chunk.len() as i32;
                if let Some(st) = plugin.stream_mut(id) {
                    if upstream_side {
                        st.upstream_data = chunk;
                    } else {
                        st.downstream_data = chunk;
                    }
                }
                let name = if upstream_side {
                    "proxy_on_upstream_data"
                } else {
                    "proxy_on_downstream_data"
                };
                plugin.call::<(i32, i32, i32), i32>(
                    name,
                    which,
                    id,
                    (id as i32, len, i32::from(i + 1 == count)),
                )?;
                if let Some(st) = plugin.stream_mut(id) {
                    if upstream_side {
                        forwarded_up.append(&mut st.upstream_data);
                    } else {
                        forwarded_down.append(&mut st.downstream_data);
                    }
                }
            }
        }
        plugin.call::<(i32, i32), ()>(
            "proxy_on_downstream_connection_close",
            Cb::DownstreamClose,
            id,
            (id as i32, peer::REMOTE),
        )?;
        plugin.call::<(i32, i32), ()>(
            "proxy_on_upstream_connection_close",
            Cb::UpstreamClose,
            id,
            (id as i32, peer::LOCAL),
        )?;
        let state = plugin.finish_stream(id)?;
        let logs = plugin.logs_since(first_log);
        let state = state.ok_or_else(|| Error::Usage("stream state vanished".into()))?;
        Ok(ConnectionOutcome {
            context_id: id,
            action,
            filter_state: state.filter_state,
            downstream_data: forwarded_down,
            upstream_data: forwarded_up,
            closed: state.closed,
            logs,
        })
    }
}

impl Plugin {
    /// Starts building a TCP connection from `source` to `destination` (`ip:port` texts,
    /// set as properties `source.address` and `destination.address`; with Envoy's
    /// original-destination listener filter, the latter is the original destination).
    pub fn connection(&mut self, source: &str, destination: &str) -> TcpConnection<'_> {
        let mut properties = BTreeMap::new();
        set_address(&mut properties, "source", source);
        set_address(&mut properties, "destination", destination);
        TcpConnection {
            plugin: self,
            properties,
            downstream: Vec::new(),
            upstream: Vec::new(),
        }
    }

    /// Runs a connection with no data from `source` to `destination` through the plugin.
    pub fn tcp_connection(
        &mut self,
        source: &str,
        destination: &str,
    ) -> Result<ConnectionOutcome, Error> {
        self.connection(source, destination).send()
    }
}
