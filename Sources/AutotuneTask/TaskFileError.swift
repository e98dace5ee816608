/// A task file that cannot be used, with where and what: the file, the line and column, the field path
/// (`experiment.command[2]`) and what was expected.
public struct TaskFileError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The file's path as given.
    public var file: String
    /// The 1-based line, when known.
    public var line: Int?
    /// The 1-based column, when known.
    public var column: Int?
    /// The field's path from the top of the file, empty for the file as a whole.
    public var field: String
    /// What is wrong and what was expected.
    public var message: String

    /// Creates an error.
    public init(file: String, line: Int? = nil, column: Int? = nil, field: String, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.field = field
        self.message = message
    }

    /// `file:line:column: field: message`, the shape editors and terminals link to; a problem with the file as
    /// a whole is at 1:1. At most about 600 characters, however long what the file holds.
    public var description: String {
        let location = "\(file):\(line ?? 1):\(column ?? 1)"
        let text = field.isEmpty ? "\(location): \(message)" : "\(location): \(Self.bounded(field, 120)): \(message)"
        return Self.bounded(text, 600)
    }

    private static func bounded(_ text: String, _ limit: Int) -> String {
        text.count <= limit ? text : String(text.prefix(limit - 3)) + "..."
    }
}
