import { describe, expect, it } from 'vitest';
import * as z from 'zod/mini';
import { BadRequestError } from '../../functions/commons/http.ts';
import { parseJsonBody, parseQuery } from '../../functions/commons/request-params.ts';

function refusal(run: () => unknown): { message: string; code: string | undefined } {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(BadRequestError);
    return { message: (error as Error).message, code: (error as BadRequestError).code };
  }
  throw new Error('expected a 400');
}

describe('parseJsonBody', () => {
  const shape = z.object({
    date: z.string(),
    slots: z.array(z.int()),
    count: z.int(),
    dryRun: z.boolean(),
    options: z.object({}),
  });
  const valid = { date: '2026-12-01', slots: [1], count: 2, dryRun: false, options: {} };
  const body = (change: Record<string, unknown>) => ({
    body: JSON.stringify({ ...valid, ...change }),
    isBase64Encoded: false,
  });

  it.each([
    [{ date: 20261204 }, 'date must be a string.'],
    [{ slots: '5' }, 'slots must be an array.'],
    [{ slots: ['5'] }, 'slots.0 must be a number.'],
    [{ count: 1.5 }, 'count must be a whole number.'],
    [{ dryRun: 'yes' }, 'dryRun must be true or false.'],
    [{ options: 3 }, 'options must be an object.'],
    [{ date: undefined }, 'date is required.'],
  ])('says what type a field must have: %j', (change, message) => {
    expect(refusal(() => parseJsonBody(body(change), shape))).toEqual({
      message,
      code: 'invalid_parameter',
    });
  });

  it('takes a valid body', () => {
    expect(parseJsonBody(body({}), shape)).toEqual(valid);
  });
});

describe('parseQuery', () => {
  const shape = z.object({ date: z.optional(z.string()), status: z.optional(z.string()) });

  it('refuses a parameter given twice, naming it', () => {
    const event = {
      queryStringParameters: { date: '2026-12-05,2026-12-04' },
      rawQueryString: 'date=2026-12-05&date=2026-12-04',
    };
    expect(refusal(() => parseQuery(event, shape))).toEqual({
      message: 'date must be given once.',
      code: 'invalid_parameter',
    });
  });

  it('takes a value with a comma in it when it is given once', () => {
    const event = {
      queryStringParameters: { status: 'a,b' },
      rawQueryString: 'status=a%2Cb',
    };
    expect(parseQuery(event, shape)).toEqual({ status: 'a,b' });
  });

  it('names unknown parameters before anything else', () => {
    const event = { queryStringParameters: { x: '1' }, rawQueryString: 'x=1&x=2' };
    expect(refusal(() => parseQuery(event, shape))).toEqual({
      message: 'Unknown query parameter: x.',
      code: 'unknown_parameter',
    });
  });
});
