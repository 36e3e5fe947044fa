import ArgumentParser
import LKJWTLogic
import LKJWTSystem

/// `lkjwt-fcgi registration`: prints an application-service registration file that Synapse 1.163
/// loads as it is (AS-MODE.md B1), with fresh tokens from the system RNG.
struct RegistrationCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "registration",
        abstract: "Print an application-service registration file for serving MSC4195 behind your homeserver.",
        discussion: """
            Save the output (it holds two fresh secret tokens), list it in homeserver.yaml `app_service_config_files`, \
            and start lkjwt-fcgi with LIVEKIT_AS_REGISTRATION_FILE pointing at it and LIVEKIT_HS_SERVER_NAME set to \
            the same server name. Synapse also needs experimental_features msc4512_enabled and msc4502_enabled.
            """)

    @Option(help: "The homeserver's server name (the part after ':' in its user IDs).")
    var serverName: String

    @Option(help: "The URL at which the homeserver reaches the web server in front of lkjwt-fcgi (proxy_url), mount prefix included.")
    var url: String

    @Option(help: "The registration's unique id among the homeserver's application services.")
    var id: String = ApplicationServiceRegistration.defaultID

    func run() throws {
        do {
            let registration = try ApplicationServiceRegistration(id: id, serverName: serverName, proxyURL: url, random: SystemRandomSource())
            print(registration.yaml, terminator: "")
        } catch {
            throw ValidationError(error.description)
        }
    }
}
