public import Autotune
public import AutotuneRunner
public import Foundation

extension ExperimentSpec {
    /// The experiment that runs trials of this spec: a command, or a model server and its benchmark.
    ///
    /// The one place an experiment is built from a task file's spec, for running a study and for printing a
    /// trial's command line alike. `runner` says where programs run (here, or as Slurm jobs); placeholders in
    /// `extraPlaceholders` (e.g. `autotune`, this executable's path) are available to every template.
    public func makeExperiment(
        workingDirectory: URL,
        runner: any ProgramRunner = LocalProgramRunner(),
        extraPlaceholders: [String: String] = [:]
    ) -> any Experiment {
        switch self {
        case .command(let spec):
            CommandExperiment(
                spec: spec, defaultWorkingDirectory: workingDirectory, runner: runner,
                extraPlaceholders: extraPlaceholders)
        case .serving(let spec):
            ServingExperiment(
                spec: spec, defaultWorkingDirectory: workingDirectory, extraPlaceholders: extraPlaceholders,
                runner: runner)
        }
    }
}
