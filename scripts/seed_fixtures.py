import json, re, sys
src0 = open(sorted(__import__('glob').glob(__import__('os').path.join(__import__('os').path.dirname(__file__), '..', '..', 'shared', 'seeds', '000_*.txt')))[0]).read()
src1 = open(sorted(__import__('glob').glob(__import__('os').path.join(__import__('os').path.dirname(__file__), '..', '..', 'shared', 'seeds', '001_*.txt')))[0]).read()

def strip_comments(s):
    out=[]; i=0; ins=False
    while i < len(s):
        c=s[i]
        if ins:
            out.append(c)
            if c=='\\': out.append(s[i+1]); i+=2; continue
            if c=='"': ins=False
            i+=1; continue
        if c=='"': ins=True; out.append(c); i+=1; continue
        if s.startswith('//', i):
            j=s.find('\n', i); i = len(s) if j<0 else j; continue
        out.append(c); i+=1
    return ''.join(out)

def lenient(s):
    s = strip_comments(s)
    s = re.sub(r',(\s*[}\]])', r'\1', s)
    return json.loads(s)

def block(src, start_marker, occurrence=0):
    # the balanced {...} starting at the n-th occurrence of start_marker
    pos=-1
    for _ in range(occurrence+1):
        pos = src.index(start_marker, pos+1)
    i = src.index('{', pos)
    depth=0; ins=False; j=i
    while True:
        c=src[j]
        if ins:
            if c=='\\': j+=2; continue
            if c=='"': ins=False
        elif c=='"': ins=True
        elif c=='{': depth+=1
        elif c=='}':
            depth-=1
            if depth==0: return src[i:j+1]
        j+=1

# 000 list: the pretty copy; fix the city object that lacks quotes/commas
lst = block(src0, '{\n    "data": [{')
lst = re.sub(r'"city": \{ // 被叫号码的归属地\n.*?\n    \},', '''"city": {"id": 12, "pid": 3, "city": "南京", "area_code": "025", "post_code": "210000", "created_at": "2019-05-09 09:08:45", "updated_at": "2019-05-09 09:08:45"},''', lst, flags=re.S)
lst = lenient(lst)
lst['data'][0]['tag_groups'] = lst['data'][0]['tag_groups'][:1]
json.dump(lst, open('tests/fixtures/seeds/000_query_done_task_phones.json','w'), ensure_ascii=False, indent=2)

num = lenient('{' + src0[src0.index('"code": 200,\n    "status": "ok",\n    "message": "获取号码列表成功"'):src0.index('————————————————')].rstrip())
json.dump(num, open('tests/fixtures/seeds/000_task_number.json','w'), ensure_ascii=False, indent=2)

rec = lenient(block(src0[src0.index('接口:GET v1/record/{record_id}')+30:], '返回'))
json.dump(rec, open('tests/fixtures/seeds/000_record.json','w'), ensure_ascii=False, indent=2)

ri = lenient(block(src0, '1{\n"records"'))
ri['records'] = ri['records'][:3]
ri['utterances'] = ri['utterances'][:2]
ri['intervene_number'] = ri['intervene_number'][:1]
json.dump(ri, open('tests/fixtures/seeds/000_record_info.json','w'), ensure_ascii=False, indent=2)

ag = lenient(block(src1, '响应示例'))
ag['data']['info']['record']['crm_customer']['components'] = []
json.dump(ag, open('tests/fixtures/seeds/001_agent_detail.json','w'), ensure_ascii=False, indent=2)
errs = []
for m in re.finditer(r'\{\s*"code": (5002|1002|5005),.*?\}', src1, flags=re.S):
    errs.append(lenient(m.group(0)))
json.dump(errs, open('tests/fixtures/seeds/001_errors.json','w'), ensure_ascii=False, indent=2)
print('ok', [len(x) for x in (lst['data'], num['data']['data'], ri['records'], ag['data']['records'])], [e['code'] for e in errs])
