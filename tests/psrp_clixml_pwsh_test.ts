/**
 * CLIXML both ways against the real pwsh 7.6: pwsh's own `PSSerializer.Serialize` output is parsed by
 * plugins/psrp/clixml.ts, and documents written by it are deserialised by pwsh, which checks each value's
 * type and content itself. One pwsh per test (tests/psrp_pwsh.ts), bounded in time.
 */
import { deepStrictEqual as assertEquals, ok } from "node:assert/strict";
import {
  deserializeAll,
  PLAIN_SESSION_KEY,
  PSObject,
  PSPrimitive,
  PSSecureString,
  type PSValue,
  readErrorRecord,
  readInformationRecord,
  readProgressRecord,
  serializeDocument,
} from "../plugins/psrp/mod.ts";
import { runScript, withPwsh } from "./psrp_pwsh.ts";

const RICH = `
$values = @(
  'plain', '', "tab\`tline\`nend", 'under_x005F_score_xcafe', [char]'Q', "emoji $([char]::ConvertFromUtf32(0x1F313))",
  $true, $false, [byte]255, [sbyte]-5, [int16]-300, [uint16]65000, [int]-2147483648, [uint32]4000000000,
  [long]-9007199254740993, [uint64]18446744073709551615, [single]1.5, [double]::NaN, [double]::PositiveInfinity,
  [double]-2.5E-10, [decimal]'79228162514264337593543950335', $null,
  [datetime]::new(2020, 1, 2, 3, 4, 5, 678, [DateTimeKind]::Utc).AddTicks(9), [timespan]::new(1, 2, 3, 4, 5),
  [guid]'0f8fad5b-d9cb-469f-a165-70867728950e', [byte[]](0, 1, 254, 255), [version]'1.2.3.4',
  [uri]'https://example.com/a b?q=1', [xml]'<r a="1"/>', { Get-Date },
  @(1, 'two', @(3)), [ordered]@{ b = 2; a = 1 }, @{ k = 'v' },
  [System.Collections.Generic.List[int]]@(7, 8), [System.Collections.Stack]::new(@(1, 2)),
  [System.Collections.Queue]::new(@('q1', 'q2')),
  [pscustomobject]@{ Name = 'n'; Count = 3; Nested = [pscustomobject]@{ Deep = $true } },
  [System.ConsoleColor]::Cyan, [System.IO.FileAttributes]'Hidden, Archive',
  [System.Management.Automation.ProgressRecord]::new(3, 'act', 'stat'),
  [System.Management.Automation.InformationRecord]::new('info msg', 'src'),
  (ConvertTo-SecureString -String 'pw' -AsPlainText -Force)
)
$shared = [pscustomobject]@{ Id = 1 }
$values += ,@($shared, $shared)
try { throw [System.IO.FileNotFoundException]::new('no such file', 'f.txt') } catch { $values += $_ }
[System.Management.Automation.PSSerializer]::Serialize($values, 3)
`;

Deno.test("deserializeAll() reads what pwsh's PSSerializer writes for a rich set of values", async () => {
  await withPwsh({}, async ({ pool }) => {
    const r = await runScript(pool, RICH);
    assertEquals(r.errors, []);
    const [root] = deserializeAll(String(r.output[0]));
    const v = (root as PSObject).items!;
    const prim = (i: number) => v[i] as PSPrimitive;
    assertEquals(v.slice(0, 4), ["plain", "", "tab\tline\nend", "under_x005F_score_xcafe"]);
    assertEquals([prim(4).tag, prim(4).value], ["C", 81]);
    assertEquals(v[5], "emoji \u{1F313}");
    assertEquals(v.slice(6, 8), [true, false]);
    assertEquals([8, 9, 10, 11].map((i) => [prim(i).tag, prim(i).value]), [
      ["By", 255],
      ["SB", -5],
      ["I16", -300],
      ["U16", 65000],
    ]);
    assertEquals(v[12], -2147483648);
    assertEquals([prim(13).tag, prim(13).value], ["U32", 4000000000]);
    assertEquals(v[14], -9007199254740993n);
    assertEquals([prim(15).tag, prim(15).value], ["U64", 18446744073709551615n]);
    assertEquals([prim(16).tag, prim(16).value], ["Sg", 1.5]);
    ok(Number.isNaN(prim(17).value));
    assertEquals([prim(18).value, prim(19).value], [Infinity, -2.5e-10]);
    assertEquals([prim(20).tag, prim(20).value], ["D", "79228162514264337593543950335"]);
    assertEquals(v[21], null);
    assertEquals([prim(22).tag, prim(22).value], ["DT", "2020-01-02T03:04:05.6780009Z"]);
    assertEquals(prim(22).toDate().toISOString(), "2020-01-02T03:04:05.678Z");
    assertEquals([prim(23).tag, prim(23).value], ["TS", "P1DT2H3M4.005S"]);
    assertEquals([prim(24).tag, prim(24).value], ["G", "0f8fad5b-d9cb-469f-a165-70867728950e"]);
    assertEquals(v[25], new Uint8Array([0, 1, 254, 255]));
    assertEquals([prim(26).tag, prim(26).value], ["Version", "1.2.3.4"]);
    assertEquals([prim(27).tag, prim(27).value], ["URI", "https://example.com/a b?q=1"]);
    assertEquals([prim(28).tag, prim(28).value], ["XD", '<r a="1" />']);
    assertEquals([prim(29).tag, String(prim(29).value).trim()], ["SBK", "Get-Date"]);
    const arr = v[30] as PSObject;
    assertEquals([arr.typeNames[0], arr.items?.slice(0, 2)], ["System.Object[]", [1, "two"]]);
    assertEquals((arr.items?.[2] as PSObject).items, [3]);
    const ordered = v[31] as PSObject;
    assertEquals([...ordered.dict!.entries()], [["b", 2], ["a", 1]]);
    assertEquals([...(v[32] as PSObject).dict!.entries()], [["k", "v"]]);
    assertEquals([(v[33] as PSObject).itemsKind, (v[33] as PSObject).items], ["LST", [7, 8]]);
    assertEquals([(v[34] as PSObject).itemsKind, (v[34] as PSObject).items], ["STK", [2, 1]]);
    assertEquals([(v[35] as PSObject).itemsKind, (v[35] as PSObject).items], ["QUE", ["q1", "q2"]]);
    const custom = v[36] as PSObject;
    assertEquals(custom.typeNames[0], "System.Management.Automation.PSCustomObject");
    assertEquals([custom.get("name"), custom.get("COUNT"), (custom.get("Nested") as PSObject).get("Deep")], [
      "n",
      3,
      true,
    ]);
    const color = v[37] as PSObject;
    assertEquals([color.typeNames.slice(0, 2), color.toString(), color.value], [
      ["System.ConsoleColor", "System.Enum"],
      "Cyan",
      11,
    ]);
    assertEquals([(v[38] as PSObject).toString(), (v[38] as PSObject).value], ["Hidden, Archive", 34]);
    const progress = readProgressRecord(v[39]);
    assertEquals([progress.activity, progress.activityId, progress.statusDescription, progress.percentComplete], [
      "act",
      3,
      "stat",
      -1,
    ]);
    const info = readInformationRecord(v[40]);
    assertEquals([info.messageData, info.source], ["info msg", "src"]);
    ok(v[41] instanceof PSSecureString);
    const [a, b] = (v[42] as PSObject).items!;
    ok(a === b && a instanceof PSObject && a.get("Id") === 1, "a Ref resolves to the same object");
    const err = readErrorRecord(v[43]);
    assertEquals([err.message, err.exceptionType], ["no such file", "System.IO.FileNotFoundException"]);
  });
});

Deno.test("serializeDocument() writes CLIXML that pwsh deserialises to the same types and values", async () => {
  const shared = new PSObject({ typeNames: ["Demo.Shared", "System.Object"], extended: { Id: 9 } });
  const values: PSValue[] = [
    'text <&> "q" _x_ \t\n\u0001 \u{1F600}',
    "",
    true,
    42,
    -1.25,
    2n ** 62n,
    null,
    new Date("2021-03-04T05:06:07.890Z"),
    new Uint8Array([1, 2, 3]),
    new PSPrimitive("C", 0x41),
    new PSPrimitive("By", 200),
    new PSPrimitive("SB", -100),
    new PSPrimitive("I16", -2),
    new PSPrimitive("U16", 2),
    new PSPrimitive("U32", 4294967295),
    new PSPrimitive("U64", 18446744073709551615n),
    new PSPrimitive("Sg", 0.5),
    new PSPrimitive("Db", NaN),
    new PSPrimitive("D", "12345678901234567890.123"),
    new PSPrimitive("G", "0f8fad5b-d9cb-469f-a165-70867728950e"),
    new PSPrimitive("TS", "PT1H30M0.5S"),
    new PSPrimitive("Version", "10.0.1"),
    new PSPrimitive("URI", "http://h/p?x=1&y=2"),
    new PSPrimitive("DT", "2020-01-02T03:04:05.6780009Z"),
    [1, "two", [3]],
    new Map<PSValue, PSValue>([["k", "v"], [1, true]]),
    new PSObject({
      typeNames: ["Demo.Thing", "System.Object"],
      toStringText: "a thing",
      extended: { Name: "n", List: ["x"], Inner: new PSObject({ extended: { Deep: 1n } }) },
      adapted: { Size: 3 },
    }),
    [shared, shared],
  ];
  const check = `
param($xml)
$v = [System.Management.Automation.PSSerializer]::DeserializeAsList($xml)
$bad = [System.Collections.Generic.List[string]]::new()
function want($i, $cond, $what) { if (-not $cond) { $bad.Add("$i $what (got $($v[$i]) : $(if ($null -ne $v[$i]) { $v[$i].GetType().FullName }))") } }
want 0 ($v[0] -ceq "text <&> \`"q\`" _x_ \`t\`n$([char]1) $([char]::ConvertFromUtf32(0x1F600))") 'string'
want 1 ($v[1] -is [string] -and $v[1] -eq '') 'empty string'
want 2 ($v[2] -is [bool] -and $v[2]) 'bool'
want 3 ($v[3] -is [int] -and $v[3] -eq 42) 'int'
want 4 ($v[4] -is [double] -and $v[4] -eq -1.25) 'double'
want 5 ($v[5] -is [long] -and $v[5] -eq [long]4611686018427387904) 'long'
want 6 ($null -eq $v[6]) 'null'
want 7 ($v[7] -is [datetime] -and $v[7].ToUniversalTime() -eq [datetime]::new(2021,3,4,5,6,7,890,[DateTimeKind]::Utc)) 'datetime'
want 8 ($v[8] -is [byte[]] -and ($v[8] -join ',') -eq '1,2,3') 'bytes'
want 9 ($v[9] -is [char] -and $v[9] -eq [char]'A') 'char'
want 10 ($v[10] -is [byte] -and $v[10] -eq 200) 'byte'
want 11 ($v[11] -is [sbyte] -and $v[11] -eq -100) 'sbyte'
want 12 ($v[12] -is [int16] -and $v[12] -eq -2) 'int16'
want 13 ($v[13] -is [uint16] -and $v[13] -eq 2) 'uint16'
want 14 ($v[14] -is [uint32] -and $v[14] -eq 4294967295) 'uint32'
want 15 ($v[15] -is [uint64] -and $v[15] -eq [uint64]::MaxValue) 'uint64'
want 16 ($v[16] -is [single] -and $v[16] -eq 0.5) 'single'
want 17 ($v[17] -is [double] -and [double]::IsNaN($v[17])) 'nan'
want 18 ($v[18] -is [decimal] -and $v[18].ToString([cultureinfo]::InvariantCulture) -eq '12345678901234567890.123') 'decimal'
want 19 ($v[19] -is [guid] -and $v[19] -eq [guid]'0f8fad5b-d9cb-469f-a165-70867728950e') 'guid'
want 20 ($v[20] -is [timespan] -and $v[20] -eq [timespan]::new(0,1,30,0,500)) 'timespan'
want 21 ($v[21] -is [version] -and $v[21] -eq [version]'10.0.1') 'version'
want 22 ($v[22] -is [uri] -and $v[22].Query -eq '?x=1&y=2') 'uri'
want 23 ($v[23] -is [datetime] -and $v[23].Ticks % 10000000 -eq 6780009) 'datetime ticks'
want 24 ($v[24].Count -eq 3 -and $v[24][1] -eq 'two' -and $v[24][2][0] -eq 3) 'array'
want 25 ($v[25] -is [hashtable] -and $v[25]['k'] -eq 'v' -and $v[25][1] -eq $true) 'hashtable'
want 26 ($v[26].PSObject.TypeNames[0] -eq 'Deserialized.Demo.Thing' -and "$($v[26])" -eq 'a thing' -and $v[26].Name -eq 'n' -and $v[26].List[0] -eq 'x' -and $v[26].Inner.Deep -eq 1 -and $v[26].Size -eq 3) 'psobject'
want 27 ([object]::ReferenceEquals($v[27][0], $v[27][1]) -and $v[27][0].Id -eq 9) 'ref'
want 28 ($v.Count -eq 28) 'count'
$bad
'checked'
`;
  await withPwsh({}, async ({ pool }) => {
    const r = await runScript(pool, check, [serializeDocument(values)]);
    assertEquals(r.errors, []);
    assertEquals(r.output, ["checked"]);
    // a secure string as an argument: protocol 2.4 carries it as base64 of its UTF-16LE text
    const secret = await PSSecureString.encrypt("pw!", PLAIN_SESSION_KEY);
    const s = await runScript(pool, "param($s) $s.GetType().FullName; [Net.NetworkCredential]::new('', $s).Password", [
      secret,
    ]);
    assertEquals(s.output, ["System.Security.SecureString", "pw!"]);
  });
});
