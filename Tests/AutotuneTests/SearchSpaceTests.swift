import Autotune
import Foundation
import Testing

@Suite struct SearchSpaceTests {
    @Test func integersAndRealsCompareAsNumbers() throws {
        #expect(ParameterValue.int(3) == .double(3.0))
        #expect(Set([ParameterValue.int(3), .double(3.0)]).count == 1)
        #expect(ParameterValue.int(3) != .string("3"))
        #expect(ParameterValue.double(0.9).text == "0.9")
        #expect(ParameterValue.double(64).text == "64")
        let decoded = try JSONDecoder().decode([ParameterValue].self, from: Data(#"[true, 3, 2.5, "x"]"#.utf8))
        #expect(decoded == [.bool(true), .int(3), .double(2.5), .string("x")])
    }

    @Test(arguments: [
        Parameter.Domain.int(lower: 1, upper: 19), .int(lower: 0, upper: 100, step: 10),
        .int(lower: 1, upper: 1024, log: true),
        .categorical([.string("fast"), .int(8), .double(0.5)]), .bool, .fixed(.string("x")),
    ])
    func everyDiscreteValueSurvivesTheUnitRoundTrip(domain: Parameter.Domain) throws {
        for index in 0..<domain.gridCount(resolution: 1) {
            let value = domain.gridValue(at: index, resolution: 1)
            let unit = try #require(domain.unit(of: value))
            #expect(unit >= 0 && unit <= 1)
            #expect(domain.value(atUnit: unit) == value, "value \(value) came back as \(domain.value(atUnit: unit))")
        }
    }

    /// The widest ranges an int can have are counted, mapped and checked without overflow or enumeration.
    @Test func theWidestIntRangesAreCountedNotEnumerated() throws {
        #expect(ParameterValue.int(7).exactInt == 7 && ParameterValue.double(7.5).exactInt == nil)
        let widest = Parameter.Domain.int(lower: .min, upper: .max)
        #expect(widest.count == Int.max)
        #expect(widest.value(atUnit: 0) == .int(.min))
        #expect(widest.value(atUnit: 1) == .int(.max))
        #expect(widest.value(atUnit: 0.5).exactInt.map { abs($0) < 1 << 20 } == true)
        #expect(widest.contains(.int(.max)) && widest.contains(.int(.min)))
        #expect(widest.unit(of: .int(.max)).map { $0 > 0.99 && $0 <= 1 } == true)
        let space = try SearchSpace([Parameter("a", .int(lower: 1, upper: 1_000_000_000)), Parameter("b", widest)])
        #expect(space.cardinality == nil)
        #expect(space.gridCount(resolution: 5) == nil)
        let wide = try SearchSpace([Parameter("a", .int(lower: 1, upper: 1_000_000_000, step: 3))])
        #expect(wide.cardinality == 333_333_334)
        #expect(wide.gridConfiguration(at: 333_333_333, resolution: 1)["a"] == .int(1_000_000_000))
        #expect(Parameter.Domain.int(lower: -5, upper: 5, step: 5).unit(of: .int(3)) == nil)
    }

    @Test func floatsMapLinearlyOrLogarithmically() throws {
        let linear = Parameter.Domain.float(lower: 0.5, upper: 0.95)
        #expect(linear.value(atUnit: 0) == .double(0.5))
        #expect(linear.value(atUnit: 1) == .double(0.95))
        let log = Parameter.Domain.float(lower: 1e-4, upper: 1e-1, log: true)
        let middle = try #require(log.value(atUnit: 0.5).numericValue)
        #expect(abs(middle - 10.0.squareRoot() * 1e-3) < 1e-9)
        #expect(abs(try #require(log.unit(of: .double(1e-3))) - 1.0 / 3) < 1e-9)
        #expect(log.unit(of: .double(1)) == nil)
    }

    @Test func uniformUnitDrawsPickEveryIntegerEquallyOften() {
        let domain = Parameter.Domain.int(lower: 1, upper: 4)
        var generator = SeededGenerator(seed: 3)
        var counts: [ParameterValue: Int] = [:]
        for _ in 0..<40_000 { counts[domain.value(atUnit: generator.nextUnit()), default: 0] += 1 }
        #expect(counts.count == 4)
        for (_, count) in counts { #expect(abs(count - 10_000) < 500) }
    }

    @Test func invalidSpacesAreRejectedWithTheParameterName() {
        #expect(throws: SearchSpaceError("parameter 'a' is declared twice")) {
            try SearchSpace([Parameter("a", .bool), Parameter("a", .bool)])
        }
        #expect(throws: SearchSpaceError("'x': a log-scaled float needs min > 0")) {
            try SearchSpace([Parameter("x", .float(lower: 0, upper: 1, log: true))])
        }
        #expect(throws: SearchSpaceError("'n': min 5 is above max 1")) {
            try SearchSpace([Parameter("n", .int(lower: 5, upper: 1))])
        }
    }

    @Test func coerceRestoresKindsAndRejectsStrangers() throws {
        let space = try SearchSpace([
            Parameter("n", .int(lower: 1, upper: 8)), Parameter("x", .float(lower: 0, upper: 1)),
        ])
        let coerced = try space.coerce(["n": .double(4), "x": .int(1)])
        #expect(coerced["n"].map { if case .int(4) = $0 { true } else { false } } == true)
        #expect(coerced["x"].map { if case .double(1) = $0 { true } else { false } } == true)
        #expect(throws: SearchSpaceError.self) { try space.coerce(["n": .int(9), "x": .double(0)]) }
        #expect(throws: SearchSpaceError("no value for parameter 'x'")) { try space.coerce(["n": .int(1)]) }
        #expect(throws: SearchSpaceError("'y' is not a parameter of the search space")) {
            try space.coerce(["n": .int(1), "x": .double(0), "y": .int(0)])
        }
    }

    @Test func theGridEnumeratesEveryPointOnce() throws {
        let space = try SearchSpace([
            Parameter("a", .int(lower: 1, upper: 3)), Parameter("b", .bool),
            Parameter("c", .float(lower: 0, upper: 1)), Parameter("d", .fixed(.string("k"))),
        ])
        #expect(space.cardinality == nil)
        let count = try #require(space.gridCount(resolution: 3))
        #expect(count == 18)
        let points = Set((0..<count).map { space.gridConfiguration(at: $0, resolution: 3) })
        #expect(points.count == 18)
        #expect(points.allSatisfy { space.contains($0) && $0["d"] == .string("k") })
    }

    @Test func configurationsRenderAsFlags() throws {
        let space = try SearchSpace([
            Parameter("max_num_seqs", .int(lower: 1, upper: 512)),
            Parameter("enable_chunked_prefill", .bool),
            Parameter("enforce_eager", .bool),
            Parameter("threads", .int(lower: 1, upper: 8), flag: "-t"),
            Parameter("dtype", .fixed(.string("half"))),
        ])
        let configuration = Configuration([
            "max_num_seqs": .int(64), "enable_chunked_prefill": .bool(true), "enforce_eager": .bool(false),
            "threads": .int(4), "dtype": .string("half"),
        ])
        #expect(
            configuration.flags(in: space)
                == ["--max-num-seqs", "64", "--enable-chunked-prefill", "-t", "4", "--dtype", "half"]
        )
        #expect(
            configuration.flags(in: space, excluding: ["threads", "dtype"]) == [
                "--max-num-seqs", "64", "--enable-chunked-prefill",
            ])
        #expect(configuration.summary(in: space).hasPrefix("max_num_seqs=64 enable_chunked_prefill=true"))
    }

    @Test func templatesSubstitutePlaceholdersAndEscapes() throws {
        #expect(try Template("-b{level}").render(["level": "3"]) == "-b3")
        #expect(try Template(#"{{"x": {x}}}"#).render(["x": "1.5"]) == #"{"x": 1.5}"#)
        #expect(Template("--port={port} {model}").placeholders == ["port", "model"])
        #expect(throws: TemplateError.self) { try Template("{nope}").render([:]) }
        #expect(throws: TemplateError.self) { try Template("{open").render([:]) }
        #expect(throws: TemplateError.self) { try Template("close}").render([:]) }
    }
}
