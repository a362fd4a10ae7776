//! Why the edge refused a request. Every reason has a stable code that appears in the
//! log event and in the rejection counters.

/// A request or connection refused before it reached the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rejection {
    /// A line ended in a bare LF, or a bare CR appeared in the head.
    BareLineFeed,
    /// The request line is not `method SP target SP version`.
    MalformedRequestLine,
    /// The version is well formed but not HTTP/1.0 or HTTP/1.1.
    UnsupportedVersion,
    /// The request target has the wrong form for its method.
    InvalidTargetForm,
    /// The request target contains bytes a target may not.
    InvalidTarget,
    /// A field line is not `name: value`, or the name is not a token.
    InvalidHeaderName,
    /// Whitespace between a field name and its colon.
    WhitespaceBeforeColon,
    /// A field value contains a control character.
    InvalidHeaderValue,
    /// A field line continued on the next line (obs-fold).
    ObsoleteLineFolding,
    /// HTTP/1.1 without Host, or with more than one.
    MissingOrDuplicateHost,
    /// The Host value is not a valid authority.
    InvalidHost,
    /// An absolute-form target whose authority differs from Host.
    HostMismatch,
    /// Both Transfer-Encoding and Content-Length.
    TransferEncodingWithContentLength,
    /// Transfer-Encoding in an HTTP/1.0 request.
    TransferEncodingInHttp10,
    /// A transfer coding other than a single `chunked`.
    UnsupportedTransferEncoding,
    /// A Content-Length that is malformed, too large, or repeated.
    InvalidContentLength,
    /// A chunk size, chunk extension or chunk terminator is malformed.
    InvalidChunk,
    /// The request line is longer than maxRequestLineSize.
    RequestLineTooLong,
    /// More header fields than maxRequestHeaderCount.
    TooManyHeaders,
    /// The header section is larger than maxRequestHeadersTotalSize.
    HeadersTooLarge,
    /// The head did not arrive within requestHeadersTimeout.
    RequestHeadersTimeout,
    /// maxConcurrentConnections was reached; the connection was closed at accept.
    ConnectionLimit,
    /// The client read the response slower than minResponseDataRate; connection aborted.
    ResponseTooSlow,
    /// The TLS handshake failed: not TLS, no common protocol or cipher suite, a bad
    /// client certificate, or the client closed the connection during it.
    TlsHandshakeFailed,
    /// The TLS handshake did not complete within its time limit.
    TlsHandshakeTimeout,
    /// An HTTP/2 response waited on its stream's flow-control window, and the client
    /// opened it slower than minResponseDataRate; the stream was reset.
    Http2StreamWindowStall,
    /// The HTTP/2 connection-level window stayed at zero longer than minResponseDataRate
    /// allows; GOAWAY and close.
    Http2ConnectionWindowStall,
    /// More non-ACK SETTINGS frames than allowed in the window; GOAWAY and close.
    Http2SettingsFlood,
    /// More non-ACK PING frames than allowed in the window; GOAWAY and close.
    Http2PingFlood,
    /// maxConcurrentUpgradedConnections was reached: the upgrade was refused and the
    /// application told so.
    UpgradeLimit,
}

impl Rejection {
    /// The stable reason code, as logged.
    pub fn code(self) -> &'static str {
        match self {
            Rejection::BareLineFeed => "BAD_REQUEST_BARE_LF",
            Rejection::MalformedRequestLine => "BAD_REQUEST_LINE",
            Rejection::UnsupportedVersion => "HTTP_VERSION_NOT_SUPPORTED",
            Rejection::InvalidTargetForm => "BAD_REQUEST_TARGET_FORM",
            Rejection::InvalidTarget => "BAD_REQUEST_TARGET",
            Rejection::InvalidHeaderName => "BAD_REQUEST_HEADER_NAME",
            Rejection::WhitespaceBeforeColon => "BAD_REQUEST_HEADER_WHITESPACE",
            Rejection::InvalidHeaderValue => "BAD_REQUEST_HEADER_VALUE",
            Rejection::ObsoleteLineFolding => "BAD_REQUEST_OBS_FOLD",
            Rejection::MissingOrDuplicateHost => "BAD_REQUEST_HOST",
            Rejection::InvalidHost => "BAD_REQUEST_HOST_VALUE",
            Rejection::HostMismatch => "BAD_REQUEST_HOST_MISMATCH",
            Rejection::TransferEncodingWithContentLength => "BAD_REQUEST_TE_CL",
            Rejection::TransferEncodingInHttp10 => "BAD_REQUEST_TE_HTTP10",
            Rejection::UnsupportedTransferEncoding => "BAD_REQUEST_TE",
            Rejection::InvalidContentLength => "BAD_REQUEST_CONTENT_LENGTH",
            Rejection::InvalidChunk => "BAD_REQUEST_CHUNK",
            Rejection::RequestLineTooLong => "REQUEST_LINE_TOO_LONG",
            Rejection::TooManyHeaders => "TOO_MANY_HEADERS",
            Rejection::HeadersTooLarge => "HEADERS_TOO_LARGE",
            Rejection::RequestHeadersTimeout => "REQUEST_HEADERS_TIMEOUT",
            Rejection::ConnectionLimit => "MAX_CONCURRENT_CONNECTIONS",
            Rejection::ResponseTooSlow => "MIN_RESPONSE_DATA_RATE",
            Rejection::TlsHandshakeFailed => "TLS_HANDSHAKE_FAILED",
            Rejection::TlsHandshakeTimeout => "TLS_HANDSHAKE_TIMEOUT",
            Rejection::Http2StreamWindowStall => "HTTP2_STREAM_WINDOW_STALL",
            Rejection::Http2ConnectionWindowStall => "HTTP2_CONNECTION_WINDOW_STALL",
            Rejection::Http2SettingsFlood => "HTTP2_SETTINGS_FLOOD",
            Rejection::Http2PingFlood => "HTTP2_PING_FLOOD",
            Rejection::UpgradeLimit => "MAX_CONCURRENT_UPGRADED_CONNECTIONS",
        }
    }

    /// The status the client gets; 0 when the connection is simply closed.
    pub fn status(self) -> u16 {
        match self {
            Rejection::UnsupportedVersion => 505,
            Rejection::RequestLineTooLong => 414,
            Rejection::TooManyHeaders | Rejection::HeadersTooLarge => 431,
            Rejection::RequestHeadersTimeout => 408,
            Rejection::ConnectionLimit
            | Rejection::ResponseTooSlow
            | Rejection::TlsHandshakeFailed
            | Rejection::TlsHandshakeTimeout
            | Rejection::Http2StreamWindowStall
            | Rejection::Http2ConnectionWindowStall
            | Rejection::Http2SettingsFlood
            | Rejection::Http2PingFlood
            | Rejection::UpgradeLimit => 0,
            _ => 400,
        }
    }

    /// The response that tells the client why, and that the connection ends here.
    pub fn response<B: Default>(self) -> http::Response<B> {
        let mut response = http::Response::new(B::default());
        *response.status_mut() =
            http::StatusCode::from_u16(self.status()).unwrap_or(http::StatusCode::BAD_REQUEST);
        response.headers_mut().insert(
            http::header::CONNECTION,
            http::HeaderValue::from_static("close"),
        );
        response
    }

    /// Every reason, for counters.
    pub const ALL: [Rejection; 30] = [
        Rejection::BareLineFeed,
        Rejection::MalformedRequestLine,
        Rejection::UnsupportedVersion,
        Rejection::InvalidTargetForm,
        Rejection::InvalidTarget,
        Rejection::InvalidHeaderName,
        Rejection::WhitespaceBeforeColon,
        Rejection::InvalidHeaderValue,
        Rejection::ObsoleteLineFolding,
        Rejection::MissingOrDuplicateHost,
        Rejection::InvalidHost,
        Rejection::HostMismatch,
        Rejection::TransferEncodingWithContentLength,
        Rejection::TransferEncodingInHttp10,
        Rejection::UnsupportedTransferEncoding,
        Rejection::InvalidContentLength,
        Rejection::InvalidChunk,
        Rejection::RequestLineTooLong,
        Rejection::TooManyHeaders,
        Rejection::HeadersTooLarge,
        Rejection::RequestHeadersTimeout,
        Rejection::ConnectionLimit,
        Rejection::ResponseTooSlow,
        Rejection::TlsHandshakeFailed,
        Rejection::TlsHandshakeTimeout,
        Rejection::Http2StreamWindowStall,
        Rejection::Http2ConnectionWindowStall,
        Rejection::Http2SettingsFlood,
        Rejection::Http2PingFlood,
        Rejection::UpgradeLimit,
    ];

    pub fn index(self) -> usize {
        Rejection::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }
}
