/// A failure of Autotune's libraries: what went wrong as a ``Code`` callers can test, a message for a person that
/// names the study, trial, file or database, and the error underneath when there is one.
///
/// One shape for the store, the study book, the loop and the application layer, after swift-subprocess's
/// `SubprocessError`: the code says what kind of failure it is, ``Code/category`` says what a command-line tool
/// should make of it (its exit code), and ``underlyingError`` keeps the cause instead of flattening it into the
/// message.
public struct AutotuneError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What a failure means to whoever started the work: the command line maps each to its exit code.
    public enum Category: String, Sendable, Hashable {
        /// Something failed while working (a database that cannot be reached, a full disk, a broken strategy).
        case failure
        /// What was given is invalid: a task file, an argument, a condition.
        case invalidInput
        /// The study named is unknown, or one of that name exists already.
        case unknownStudy
        /// Nothing to show: no trial completed, or none meets a condition.
        case noResult
    }

    /// What went wrong.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Kind: String, Sendable, Hashable {
            case studyExists, studyNotFound, corrupt, unavailable, diskFull, lockTimeout
            case invalidTask, invalidArgument
            case studyBusy, strategy, configuration
            case tooManyProposals, invalidProposal, infeasibleProposal, runningProposal, repeatedProposal
            case noCompletedTrial, notFound
        }

        private let kind: Kind

        private init(_ kind: Kind) { self.kind = kind }

        /// A study with this name exists already.
        public static let studyExists = Self(.studyExists)
        /// No study has this name.
        public static let studyNotFound = Self(.studyNotFound)
        /// A row or the database file cannot be read.
        public static let corrupt = Self(.corrupt)
        /// The database cannot be reached or refused the operation.
        public static let unavailable = Self(.unavailable)
        /// The disk holding the database or the trials' files is full.
        public static let diskFull = Self(.diskFull)
        /// Another process held the database's lock for longer than a write waits.
        public static let lockTimeout = Self(.lockTimeout)
        /// A task file that cannot be used (its message has the file, line and field).
        public static let invalidTask = Self(.invalidTask)
        /// An argument or option that cannot be used.
        public static let invalidArgument = Self(.invalidArgument)
        /// Another live process is running the study.
        public static let studyBusy = Self(.studyBusy)
        /// The strategy broke its contract or could not be built.
        public static let strategy = Self(.strategy)
        /// The runner was set up without something the study needs.
        public static let configuration = Self(.configuration)
        /// A strategy proposed more configurations than asked for.
        public static let tooManyProposals = Self(.tooManyProposals)
        /// A strategy proposed a configuration outside the space.
        public static let invalidProposal = Self(.invalidProposal)
        /// A strategy proposed a configuration that breaks a known constraint between parameters.
        public static let infeasibleProposal = Self(.infeasibleProposal)
        /// A strategy proposed the configuration of a running trial.
        public static let runningProposal = Self(.runningProposal)
        /// In a finite space, a strategy proposed a configuration the study already has.
        public static let repeatedProposal = Self(.repeatedProposal)
        /// No trial completed, or none meets what was asked.
        public static let noCompletedTrial = Self(.noCompletedTrial)
        /// A trial or page that does not exist.
        public static let notFound = Self(.notFound)

        /// What a command-line tool makes of the code.
        public var category: Category {
            switch kind {
            case .studyExists, .studyNotFound: .unknownStudy
            case .invalidTask, .invalidArgument: .invalidInput
            case .noCompletedTrial: .noResult
            default: .failure
            }
        }

        /// The code's name.
        public var description: String { kind.rawValue }
    }

    /// What went wrong.
    public var code: Code
    /// What a person needs to know: the study, the trial, the file or database, and what to do.
    public var message: String
    /// The error this one reports, when it wraps one (a GRDB or PostgreSQL error, a task file's).
    public var underlyingError: (any Error & Sendable)?

    /// Creates an error.
    public init(_ code: Code, _ message: String, underlying: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.underlyingError = underlying
    }

    /// A study called `name` exists already.
    public static func studyExists(_ name: String) -> Self {
        Self(.studyExists, "a study named '\(name)' exists already (use `autotune resume \(name)`, or --study NAME)")
    }

    /// A message for a person.
    public var description: String {
        code == .corrupt ? "the database is damaged: \(message)" : message
    }

    /// Errors are equal when their code and message are: the underlying error is context, not identity.
    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.code == rhs.code && lhs.message == rhs.message
    }

    /// Hashes the code and the message.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(code)
        hasher.combine(message)
    }
}
