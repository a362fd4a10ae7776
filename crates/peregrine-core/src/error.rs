use std::fmt;

/// Stable error codes. The string form is part of the public contract: users search
/// for it, and the TypeScript layer surfaces it as `error.code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidUrl,
    UnsupportedScheme,
    AddressInUse,
    AddressNotAvailable,
    Bind,
    NoEndpoints,
    UnknownExchange,
    ResponseAlreadyStarted,
    InvalidStatus,
    InvalidHeader,
    BodyTooLarge,
    BodyTooSlow,
    BodyRead,
    ServerStopped,
    InvalidOption,
    TlsNotConfigured,
    TlsInvalidCertificate,
    TlsInvalidKey,
    TlsKeyMismatch,
    TlsCertificateExpired,
    TlsInvalidCa,
    NotUpgradable,
    UpgradeLimit,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidUrl => "PEREGRINE_INVALID_URL",
            ErrorCode::UnsupportedScheme => "PEREGRINE_UNSUPPORTED_SCHEME",
            ErrorCode::AddressInUse => "PEREGRINE_ADDRESS_IN_USE",
            ErrorCode::AddressNotAvailable => "PEREGRINE_ADDRESS_NOT_AVAILABLE",
            ErrorCode::Bind => "PEREGRINE_BIND_FAILED",
            ErrorCode::NoEndpoints => "PEREGRINE_NO_ENDPOINTS",
            ErrorCode::UnknownExchange => "PEREGRINE_UNKNOWN_EXCHANGE",
            ErrorCode::ResponseAlreadyStarted => "PEREGRINE_RESPONSE_STARTED",
            ErrorCode::InvalidStatus => "PEREGRINE_INVALID_STATUS",
            ErrorCode::InvalidHeader => "PEREGRINE_INVALID_HEADER",
            ErrorCode::BodyTooLarge => "PEREGRINE_MAX_REQUEST_BODY_SIZE",
            ErrorCode::BodyTooSlow => "PEREGRINE_MIN_REQUEST_BODY_DATA_RATE",
            ErrorCode::BodyRead => "PEREGRINE_BODY_READ_FAILED",
            ErrorCode::ServerStopped => "PEREGRINE_SERVER_STOPPED",
            ErrorCode::InvalidOption => "PEREGRINE_INVALID_OPTION",
            ErrorCode::TlsNotConfigured => "PEREGRINE_TLS_NOT_CONFIGURED",
            ErrorCode::TlsInvalidCertificate => "PEREGRINE_TLS_INVALID_CERTIFICATE",
            ErrorCode::TlsInvalidKey => "PEREGRINE_TLS_INVALID_KEY",
            ErrorCode::TlsKeyMismatch => "PEREGRINE_TLS_KEY_MISMATCH",
            ErrorCode::TlsCertificateExpired => "PEREGRINE_TLS_CERTIFICATE_EXPIRED",
            ErrorCode::TlsInvalidCa => "PEREGRINE_TLS_INVALID_CA",
            ErrorCode::NotUpgradable => "PEREGRINE_NOT_UPGRADABLE",
            ErrorCode::UpgradeLimit => "PEREGRINE_UPGRADE_LIMIT",
        }
    }
}

/// An error a user can meet: a stable code plus a message that says which input was
/// wrong and what to do about it.
#[derive(Debug, Clone)]
pub struct Error {
    pub code: ErrorCode,
    pub message: String,
}

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for Error {}
