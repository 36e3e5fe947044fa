import LKJWTLogic

extension Configuration {
    /// Stands in for the OS error a real file read throws; its description is what gets printed.
    struct MissingFile: Error, CustomStringConvertible {
        let description: String
    }

    /// `parse` with the files of `files` instead of the file system's: any other path fails as a
    /// missing file does.
    package static func parse(
        environment: [String: String], files: [String: String], readRegistration: ApplicationServiceRegistration.Reader? = nil
    ) throws(ConfigurationError) -> (configuration: Configuration, notices: [ConfigurationNotice]) {
        try parse(
            environment: environment,
            readFile: { path in
                guard let content = files[path] else { throw MissingFile(description: "open \(path): no such file or directory") }
                return content
            },
            readRegistration: readRegistration)
    }

    /// The start-up error of `parse(environment:files:readRegistration:)`, or nil when there is none.
    package static func parseError(
        environment: [String: String], files: [String: String], readRegistration: ApplicationServiceRegistration.Reader? = nil
    ) -> String? {
        do {
            _ = try parse(environment: environment, files: files, readRegistration: readRegistration)
            return nil
        } catch {
            return error.message
        }
    }
}
