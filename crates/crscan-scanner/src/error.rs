//! Why a scan failed, classified by the `google.rpc.Code` the API reports on the
//! scan's Operation (`shared/api/yandex-container-registry.md` §1.7 and §11).

/// The `google.rpc.Code` values a scan can end with
/// (<https://github.com/googleapis/googleapis/blob/master/google/rpc/code.proto>).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The scan was cancelled through `OperationService.Cancel`.
    Cancelled,
    /// The image is over the configured limits.
    ResourceExhausted,
    /// The image cannot be read, or there is no vulnerability database.
    FailedPrecondition,
    /// crscan itself failed.
    Internal,
}

impl ErrorCode {
    /// The numeric code (`Status.code`).
    pub fn number(self) -> i32 {
        match self {
            ErrorCode::Cancelled => 1,
            ErrorCode::ResourceExhausted => 8,
            ErrorCode::FailedPrecondition => 9,
            ErrorCode::Internal => 13,
        }
    }

    /// The code's name in `code.proto`.
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::Cancelled => "CANCELLED",
            ErrorCode::ResourceExhausted => "RESOURCE_EXHAUSTED",
            ErrorCode::FailedPrecondition => "FAILED_PRECONDITION",
            ErrorCode::Internal => "INTERNAL",
        }
    }

    /// The code for a number, if it is one a scan ends with.
    pub fn from_number(number: i32) -> Option<ErrorCode> {
        [
            ErrorCode::Cancelled,
            ErrorCode::ResourceExhausted,
            ErrorCode::FailedPrecondition,
            ErrorCode::Internal,
        ]
        .into_iter()
        .find(|code| code.number() == number)
    }
}

/// A failed scan: each variant's message is meant for the person who asked for it.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// No usable vulnerability database.
    #[error(
        "no vulnerability database: {detail}; run `crscan db update` to download one, or `crscan db build --from PATH` to build one from local feed files"
    )]
    NoDatabase { detail: String },
    /// The image cannot be read: a missing blob, a malformed manifest, a corrupt layer.
    #[error("cannot read image {image}: {detail}")]
    UnreadableImage { image: String, detail: String },
    /// The image is over a limit.
    #[error("image {image} is over the scan limits: {detail}")]
    OverLimit { image: String, detail: String },
    /// The files the detectors need do not fit the scan's memory budget; the detail
    /// names the file that did not fit.
    #[error(
        "image {image} needs more memory than a scan may use: {detail}; raise scan_memory_budget_mib (--memory-budget-mib for the CLI) to scan it"
    )]
    OverMemoryBudget { image: String, detail: String },
    /// The scan was cancelled.
    #[error("the scan of image {image} was cancelled")]
    Cancelled { image: String },
    /// crscan failed (an unreadable cache directory, a database error).
    #[error("internal error while scanning {image}: {detail}")]
    Internal { image: String, detail: String },
}

impl ScanError {
    /// The API code the scan's Operation reports.
    pub fn code(&self) -> ErrorCode {
        match self {
            ScanError::NoDatabase { .. } | ScanError::UnreadableImage { .. } => {
                ErrorCode::FailedPrecondition
            }
            ScanError::OverLimit { .. } | ScanError::OverMemoryBudget { .. } => {
                ErrorCode::ResourceExhausted
            }
            ScanError::Cancelled { .. } => ErrorCode::Cancelled,
            ScanError::Internal { .. } => ErrorCode::Internal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_google_rpc_numbers() {
        for (code, number, name) in [
            (ErrorCode::Cancelled, 1, "CANCELLED"),
            (ErrorCode::ResourceExhausted, 8, "RESOURCE_EXHAUSTED"),
            (ErrorCode::FailedPrecondition, 9, "FAILED_PRECONDITION"),
            (ErrorCode::Internal, 13, "INTERNAL"),
        ] {
            assert_eq!(code.number(), number);
            assert_eq!(code.name(), name);
            assert_eq!(ErrorCode::from_number(number), Some(code));
        }
        assert_eq!(ErrorCode::from_number(5), None);
    }
}
