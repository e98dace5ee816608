import ArgumentParser

/// The `autotune` command line: parses arguments and wires the modules; the work happens in the libraries.
@main
struct AutotuneCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "autotune",
        abstract: "Find the best parameters for a program or a model server by running experiments.",
        discussion: """
            Exit codes: 0 done; 1 runtime error; 2 invalid task file; 3 unknown or duplicate study; \
            4 no trial completed (or every trial failed the same way); 64 bad arguments; 130/143 stopped by \
            SIGINT/SIGTERM (resume goes on).
            """,
        version: autotuneVersion,
        subcommands: [
            RunCommand.self, ResumeCommand.self, WorkerCommand.self, StatusCommand.self, BestCommand.self,
            TrialsCommand.self, CompareCommand.self, DeleteCommand.self, ReportCommand.self, DashboardCommand.self,
            ValidateCommand.self, GPUsCommand.self, SpeedupCommand.self, SimulateCommand.self,
        ]
    )
}

/// The release this executable is.
let autotuneVersion = "0.6.0"
