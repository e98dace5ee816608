/// A program an experiment starts for each trial: an argv template, extra environment variables, a working
/// directory, and whether the parameters the templates do not place are appended as flags.
///
/// A command experiment runs one to its end; a serving experiment runs one as its server. Both render it with
/// ``render(_:configuration:space:)``, so a placeholder, a flag or a variable means the same in either.
public struct ProgramTemplate: Sendable, Hashable, Codable {
    /// The argv, each element a ``Template``.
    public var command: [Template]
    /// Extra environment variables, values being templates.
    public var environment: [String: Template]
    /// The working directory (a template); the experiment's default when `nil`.
    public var workingDirectory: Template?
    /// Whether parameters the templates do not place are appended as flags.
    public var appendFlags: Bool

    /// Creates a template.
    public init(
        command: [Template],
        environment: [String: Template] = [:],
        workingDirectory: Template? = nil,
        appendFlags: Bool = true
    ) {
        self.command = command
        self.environment = environment
        self.workingDirectory = workingDirectory
        self.appendFlags = appendFlags
    }

    /// Every placeholder the argv, the environment and the working directory use.
    public var placeholders: Set<String> {
        var names = Set(command.flatMap(\.placeholders))
        names.formUnion(environment.values.flatMap(\.placeholders))
        names.formUnion(workingDirectory?.placeholders ?? [])
        return names
    }

    /// The names of the parameters the templates place themselves (in the argv or in a variable), which are
    /// therefore not appended as flags.
    public var placedParameters: Set<String> {
        var names = Set(command.flatMap(\.placeholders))
        names.formUnion(environment.values.flatMap(\.placeholders))
        return names
    }

    /// The program for one configuration: the rendered argv followed, when ``appendFlags`` is on, by the flags of
    /// the parameters no template places; the rendered variables; the rendered working directory.
    public func render(
        _ values: [String: String],
        configuration: Configuration,
        space: SearchSpace
    ) throws(TemplateError) -> RenderedProgram {
        var arguments: [String] = []
        for template in command { arguments.append(try template.render(values)) }
        if appendFlags { arguments += configuration.flags(in: space, excluding: placedParameters) }
        var variables: [String: String] = [:]
        for (name, template) in environment { variables[name] = try template.render(values) }
        return RenderedProgram(
            arguments: arguments,
            environment: variables,
            workingDirectory: try workingDirectory?.render(values)
        )
    }
}

/// A ``ProgramTemplate`` rendered for one trial.
public struct RenderedProgram: Sendable, Hashable {
    /// The argv; the first element is a path (with a `/`) or a name looked up in `PATH`.
    public var arguments: [String]
    /// The variables the template adds to the environment.
    public var environment: [String: String]
    /// The working directory, when the template names one.
    public var workingDirectory: String?

    /// Creates a rendered program.
    public init(arguments: [String], environment: [String: String] = [:], workingDirectory: String? = nil) {
        self.arguments = arguments
        self.environment = environment
        self.workingDirectory = workingDirectory
    }
}
