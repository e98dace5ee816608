import Autotune
import Foundation
import Testing

func fixture(_ name: String) throws -> String {
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
        "Fixtures/nvidia-smi/\(name)")
    return try String(contentsOf: url, encoding: .utf8)
}

@Suite struct NvidiaSMITests {
    @Test func aBusyGPUWithHeaderAndUnits() throws {
        let gpus = try NvidiaSMI.parseGPUs(try fixture("query-busy.csv"))
        #expect(gpus.count == 1)
        let gpu = try #require(gpus.first)
        #expect(gpu.index == 0)
        #expect(gpu.uuid == "GPU-3db92102-aa80-a303-739b-1e41441b63a5")
        #expect(gpu.name == "NVIDIA H100 80GB HBM3")
        #expect(gpu.memoryTotalMiB == 81559)
        #expect(gpu.memoryUsedMiB == 1139)
        #expect(gpu.memoryFreeMiB == 79941)
        #expect(gpu.utilizationPercent == 100)
    }

    @Test func anIdleGPU() throws {
        let gpu = try #require(try NvidiaSMI.parseGPUs(try fixture("query-idle.csv")).first)
        #expect(gpu.memoryUsedMiB == 0)
        #expect(gpu.memoryFreeMiB == 81079)
        #expect(gpu.utilizationPercent == 0)
    }

    @Test func theNoHeaderNoUnitsFormAutotuneAsksFor() throws {
        let csv = """
            0, GPU-3db92102-aa80-a303-739b-1e41441b63a5, NVIDIA H100 80GB HBM3, 81559, 1139, 79941, 100
            1, GPU-aaaaaaaa-0000-0000-0000-000000000001, NVIDIA H100 80GB HBM3, 81559, [N/A], [N/A], [Not Supported]

            """
        let gpus = try NvidiaSMI.parseGPUs(csv)
        #expect(gpus.map(\.index) == [0, 1])
        #expect(gpus[0].memoryFreeMiB == 79941)
        #expect(gpus[1].memoryUsedMiB == nil)
        #expect(gpus[1].memoryFreeMiB == nil)
        #expect(gpus[1].utilizationPercent == nil)
        #expect(NvidiaSMI.queryArguments.last == "--format=csv,noheader,nounits")
    }

    @Test func computeProcesses() throws {
        let processes = try NvidiaSMI.parseProcesses(try fixture("apps-busy.csv"))
        #expect(
            processes == [
                GPUProcess(
                    pid: 409, name: "python3", usedMemoryMiB: 1130, gpuUUID: "GPU-3db92102-aa80-a303-739b-1e41441b63a5")
            ])
        #expect(try NvidiaSMI.parseProcesses("") == [])
    }

    @Test func malformedOutputIsAnErrorNotACrash() {
        #expect(throws: NvidiaSMIError.self) { try NvidiaSMI.parseGPUs("0, GPU-x, name") }
        #expect(throws: NvidiaSMIError.self) { try NvidiaSMI.parseGPUs("No devices were found, x, y, z, 1, 2, 3") }
        #expect(throws: NvidiaSMIError.self) { try NvidiaSMI.parseProcesses("pid-less line") }
    }

    @Test func gpuCountsComeFromTheConfiguration() throws {
        let request = GPURequest(count: .product(of: ["tp", "pp"]))
        #expect(try request.gpuCount(for: Configuration(["tp": .int(2), "pp": .int(4)])) == 8)
        #expect(throws: GPURequestError.self) { try request.gpuCount(for: Configuration(["tp": .int(2)])) }
        #expect(try GPURequest(count: .fixed(3)).gpuCount(for: Configuration([:])) == 3)
    }
}

@Suite struct NvidiaSMITableTests {
    @Test func thePlainTableGivesTheGPUAndItsProcess() throws {
        let (gpus, processes) = try NvidiaSMI.parseTable(try fixture("smi-busy.txt"))
        #expect(
            gpus == [
                GPU(
                    index: 0,
                    name: "NVIDIA H100 80GB HBM3",
                    memoryTotalMiB: 81559,
                    memoryUsedMiB: 1139,
                    memoryFreeMiB: 80420,
                    utilizationPercent: 100
                )
            ])
        #expect(processes == [GPUProcess(pid: 409, name: "python3", usedMemoryMiB: 1130, gpuUUID: "index:0")])
        #expect(throws: NvidiaSMIError.self) { try NvidiaSMI.parseTable("No devices were found") }
    }
}
