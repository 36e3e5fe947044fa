extension MatrixError {
    /// §13.3: the budget for servers not known to answer is spent; answered at once, never queued.
    static let unknownServersBusy = MatrixError(
        status: 503, errcode: "M_UNKNOWN", message: "Too many requests to homeservers not known to answer are in progress; try again later")
}
