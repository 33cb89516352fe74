import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { deserialize, PSObject } from "./clixml.ts";
import { errorRecordObject, readErrorRecord, readInformationalRecord, readProgressRecord } from "./records.ts";

Deno.test("readErrorRecord() prefers ErrorDetails, then the exception's message, and strips Deserialized.", () => {
  const e = readErrorRecord(deserialize(
    `<Obj RefId="0"><TN RefId="0"><T>Deserialized.System.Management.Automation.ErrorRecord</T></TN><ToString>to string</ToString><MS><Obj N="Exception" RefId="1"><TN RefId="1"><T>Deserialized.System.IO.IOException</T></TN><Props><S N="Message">disk</S></Props></Obj><S N="FullyQualifiedErrorId">Io,Cmd</S><I32 N="ErrorCategory_Category">7</I32><S N="ErrorCategory_Message">WriteError: (:) [], IOException</S><S N="InvocationInfo_PositionMessage">At line:1</S></MS></Obj>`,
  ));
  assertEquals(
    [e.message, e.exceptionType, e.fullyQualifiedErrorId, e.category, e.categoryMessage, e.positionMessage],
    [
      "disk",
      "System.IO.IOException",
      "Io,Cmd",
      7,
      "WriteError: (:) [], IOException",
      "At line:1",
    ],
  );
  const details = readErrorRecord(new PSObject({ extended: { ErrorDetails_Message: "better" } }));
  assertEquals(details.message, "better");
});

Deno.test("readProgressRecord() reads PROGRESS_RECORD's enum Type; readInformationalRecord() its message", () => {
  const p = readProgressRecord(deserialize(
    `<Obj RefId="0"><MS><S N="Activity">a</S><I32 N="ActivityId">2</I32><Nil N="CurrentOperation" /><I32 N="ParentActivityId">-1</I32><I32 N="PercentComplete">10</I32><Obj N="Type" RefId="1"><ToString>Completed</ToString><I32>1</I32></Obj><I32 N="SecondsRemaining">5</I32><S N="StatusDescription">s</S></MS></Obj>`,
  ));
  assertEquals(p, {
    activity: "a",
    activityId: 2,
    statusDescription: "s",
    currentOperation: null,
    parentActivityId: -1,
    percentComplete: 10,
    recordType: 1,
    secondsRemaining: 5,
  });
  assertEquals(readInformationalRecord(new PSObject({ extended: { InformationalRecord_Message: "w" } })).message, "w");
});

Deno.test("errorRecordObject() reads back through readErrorRecord()", () => {
  const e = readErrorRecord(errorRecordObject({ message: "m", fullyQualifiedErrorId: "Id", category: 3 }));
  assertEquals([e.message, e.fullyQualifiedErrorId, e.category, e.exceptionType], ["m", "Id", 3, "System.Exception"]);
});
