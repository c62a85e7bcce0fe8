-- Migration 0008: the binary COPY that stores the tasks of a workflow new to the store took the
-- JSON text of a task's labels and resources for a string, so those columns held a JSON string
-- ('"[\"qc\"]"') instead of the array or object. New stores write them as they are; this turns
-- the strings that earlier stores hold back into the values they spell.
UPDATE tasks SET labels = (labels #>> '{}')::jsonb WHERE jsonb_typeof(labels) = 'string';
UPDATE tasks SET resources = (resources #>> '{}')::jsonb WHERE jsonb_typeof(resources) = 'string';
